"""web_fetch (from inside the sandbox) and web_search (a configured endpoint), against servers
on this machine only."""

from __future__ import annotations

from app.sandbox import SandboxBackend, ToolRequest
from app.sandbox.base import ChannelBackend
from app.sandbox.docker_backend import DockerBackend
from tests.sandbox.support import call, http_server, text

PAGE = (
    b"<html><head><title>Test  Page</title><style>p{}</style></head>"
    b"<body><h1>Hi</h1><p>there</p></body></html>"
)


def host_address(backend: SandboxBackend) -> str:
    """How the sandbox reaches this machine: loopback, or the Docker network's gateway."""
    if isinstance(backend, DockerBackend):
        network = backend.client.networks.get(backend.settings.sandbox_network)
        return str(network.attrs["IPAM"]["Config"][0]["Gateway"])
    return "127.0.0.1"


async def test_web_fetch_returns_a_text_document(backend: SandboxBackend, session_id: str) -> None:
    routes = {"/page": ("text/html; charset=utf-8", PAGE), "/plain": ("text/plain", b"just text")}
    with http_server(routes) as port:
        base = f"http://{host_address(backend)}:{port}"
        page = await call(backend, session_id, "web_fetch", url=f"{base}/page")
        plain = await call(backend, session_id, "web_fetch", url=f"{base}/plain")
        missing = await call(backend, session_id, "web_fetch", url=f"{base}/missing")
    assert page.content == [
        {
            "type": "document",
            "title": "Test Page",
            "source": {"type": "text", "media_type": "text/plain", "data": "Hi\nthere"},
        }
    ]
    assert plain.content[0]["source"]["data"] == "just text" and plain.content[0]["title"] == f"{base}/plain"
    assert missing.is_error and "HTTP 404" in text(missing)


async def test_web_fetch_refuses_other_schemes(backend: SandboxBackend, session_id: str) -> None:
    result = await call(backend, session_id, "web_fetch", url="file:///etc/passwd")
    assert result.is_error and "http" in text(result)


async def test_web_search_calls_the_configured_endpoint(local_backend: ChannelBackend) -> None:
    with http_server({}) as port:
        settings = local_backend.settings.model_copy(
            update={"web_search_url": f"http://127.0.0.1:{port}/search"}
        )
        original = local_backend.settings  # swapped for this one call
        local_backend.settings = settings
        try:
            result = await local_backend.execute(
                "unused", ToolRequest("web_search", {"query": "mas sandbox"})
            )
        finally:
            local_backend.settings = original
    assert not result.is_error
    assert '"query": "mas+sandbox"' in text(result) and '"title": "hit"' in text(result)
