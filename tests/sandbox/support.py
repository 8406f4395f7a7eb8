"""Small helpers for sandbox tests."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from app.sandbox import SandboxBackend, ToolRequest, ToolResult


async def call(backend: SandboxBackend, session_id: str, name: str, **tool_input: Any) -> ToolResult:
    return await backend.execute(session_id, ToolRequest(name, tool_input))


async def bash(backend: SandboxBackend, session_id: str, command: str, **extra: Any) -> ToolResult:
    return await call(backend, session_id, "bash", command=command, **extra)


def text(result: ToolResult) -> str:
    assert [block["type"] for block in result.content] == ["text"], result
    return str(result.content[0]["text"])


class _Handler(http.server.BaseHTTPRequestHandler):
    routes: dict[str, tuple[str, bytes]] = {}

    def do_GET(self) -> None:
        content_type, body = self.routes.get(self.path.split("?")[0], ("text/plain", b"not found"))
        status = 404 if body == b"not found" else 200
        if self.path.startswith("/search"):
            body = json.dumps({"query": self.path.split("q=")[-1], "results": [{"title": "hit"}]}).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@contextmanager
def http_server(routes: dict[str, tuple[str, bytes]]) -> Iterator[int]:
    """A threaded HTTP server on all interfaces of this machine; yields its port."""
    handler = type("Handler", (_Handler,), {"routes": {**routes, "/search": ("application/json", b"")}})
    server = http.server.ThreadingHTTPServer(("0.0.0.0", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
