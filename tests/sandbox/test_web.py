"""web_fetch (from inside the sandbox) and web_search (a configured endpoint), against servers
on this machine only."""

from __future__ import annotations

from app.sandbox import SandboxBackend, ToolRequest
from app.sandbox.base import ChannelBackend
from tests.sandbox.support import bash, call, http_server, text

# A static server on a free port of the sandbox's loopback; prints the port once it listens.
SERVER = """
import functools, http.server
handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory="site")
server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
print(server.server_address[1], flush=True)
server.serve_forever()
"""
SERVE = "python3 serve.py > port 2>/dev/null & echo $! > pid; until [ -s port ]; do sleep 0.1; done; cat port"
PAGE = (
    b"<html><head><title>Test  Page</title><style>p{}</style></head>"
    b"<body><h1>Hi</h1><p>there</p></body></html>"
)


async def test_web_fetch_returns_a_text_document(backend: SandboxBackend, session_id: str) -> None:
    """Against a server the agent starts in its own sandbox (sandboxes cannot reach the host)."""
    await call(backend, session_id, "write", file_path="site/page.html", content=PAGE.decode())
    await call(backend, session_id, "write", file_path="site/plain.txt", content="just text")
    await call(backend, session_id, "write", file_path="serve.py", content=SERVER)
    port = text(await bash(backend, session_id, SERVE)).strip()
    base = f"http://127.0.0.1:{port}"
    try:
        page = await call(backend, session_id, "web_fetch", url=f"{base}/page.html")
        plain = await call(backend, session_id, "web_fetch", url=f"{base}/plain.txt")
        missing = await call(backend, session_id, "web_fetch", url=f"{base}/missing")
    finally:
        await bash(backend, session_id, "kill $(cat pid)")
    assert page.content == [
        {
            "type": "document",
            "title": "Test Page",
            "source": {"type": "text", "media_type": "text/plain", "data": "Hi\nthere"},
        }
    ]
    assert plain.content[0]["source"]["data"] == "just text"
    assert plain.content[0]["title"] == f"{base}/plain.txt"
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
