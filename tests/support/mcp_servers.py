"""Real MCP servers for tests: the ``mcp`` package's own server side (``MCPServer``), served by
uvicorn on a free loopback port, in a thread or (to be killed mid-call) as a child process.

Options: a bearer token the server requires (401 otherwise, tokens can be changed while it runs),
an OAuth token endpoint (``/token``, the refresh-token grant) whose access tokens expire, and the
SSE transport instead of Streamable HTTP.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import secrets
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.utilities.types import Image
from mcp.types import EmbeddedResource, TextResourceContents

ROOT = Path(__file__).resolve().parents[2]
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)
Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Stats:
    """What the server was asked to do: tool names in call order, the calls running, and the most
    calls at once."""

    calls: list[str] = field(default_factory=list)
    running: int = 0
    most_at_once: int = 0
    # What the `gated` tool waits on (a server in a thread: the test opens it).
    gate: threading.Event = field(default_factory=threading.Event)

    def enter(self, name: str) -> None:
        self.calls.append(name)
        self.running += 1
        self.most_at_once = max(self.most_at_once, self.running)


def build_server(stats: Stats) -> MCPServer:
    server = MCPServer("mas-test")
    calls = stats.calls

    @server.tool()
    def add(a: int, b: int) -> int:
        """Add two integers."""
        calls.append("add")
        return a + b

    @server.tool()
    async def slow(seconds: float, label: str = "") -> str:
        """Wait, then answer with the label."""
        stats.enter(f"slow:{label}")
        try:
            await asyncio.sleep(seconds)
        finally:
            stats.running -= 1
        return f"slept {seconds} {label}".strip()

    @server.tool()
    async def gated() -> str:
        """Wait until the test opens the gate (two minutes at most), then answer."""
        stats.enter("gated")
        try:
            opened = await asyncio.to_thread(stats.gate.wait, 120)
        finally:
            stats.running -= 1
        return "opened" if opened else "timed out"

    @server.tool()
    def picture() -> Image:
        """A 1x1 PNG image."""
        calls.append("picture")
        return Image(data=PNG, format="png")

    @server.tool()
    def document() -> EmbeddedResource:
        """An embedded text resource."""
        calls.append("document")
        return EmbeddedResource(
            type="resource",
            resource=TextResourceContents(uri="file:///notes.txt", mime_type="text/plain", text="the notes"),
        )

    @server.tool()
    def big(size: int) -> str:
        """A long text."""
        calls.append("big")
        return "x" * size

    @server.tool()
    def delete_everything() -> str:
        """A dangerous tool."""
        calls.append("delete_everything")
        return "deleted"

    return server


@dataclass
class Auth:
    """What the server accepts: bearer tokens with their expiry (None: never expires), and the
    OAuth client whose refresh tokens ``/token`` exchanges."""

    tokens: dict[str, float | None] = field(default_factory=dict)
    refresh_tokens: set[str] = field(default_factory=set)
    client_id: str = "mas-client"
    client_secret: str = "client-secret"
    lifetime_s: float = 3600.0
    refreshes: int = 0
    required: bool = False
    posts: int = 0  # JSON-RPC requests received (POST), to tell a reused connection from a new one

    def valid(self, header: str | None) -> bool:
        if not self.required:
            return True
        if not header or not header.startswith("Bearer "):
            return False
        expiry = self.tokens.get(header[7:], 0.0)
        return expiry is None or expiry > time.time()

    def issue(self, lifetime_s: float | None = None) -> str:
        token = "at-" + secrets.token_hex(12)
        self.tokens[token] = time.time() + (lifetime_s if lifetime_s is not None else self.lifetime_s)
        return token


def _wrap(inner: Any, auth: Auth) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    async def respond(send: Send, status: int, body: dict[str, Any]) -> None:
        headers = [(b"content-type", b"application/json")]
        if status == 401:
            headers.append((b"www-authenticate", b'Bearer error="invalid_token"'))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": json.dumps(body).encode()})

    async def token_endpoint(scope: Scope, receive: Receive, send: Send) -> None:
        raw = b""
        while True:
            message = await receive()
            raw += message.get("body", b"")
            if not message.get("more_body"):
                break
        form = dict(pair.split("=", 1) for pair in raw.decode().split("&") if "=" in pair)
        headers = dict(scope["headers"])
        basic = base64.b64encode(f"{auth.client_id}:{auth.client_secret}".encode())
        if headers.get(b"authorization") != b"Basic " + basic:
            await respond(send, 401, {"error": "invalid_client"})
            return
        if form.get("grant_type") != "refresh_token" or form.get("refresh_token") not in auth.refresh_tokens:
            await respond(send, 400, {"error": "invalid_grant"})
            return
        auth.refreshes += 1
        auth.refresh_tokens.discard(form["refresh_token"])
        new_refresh = "rt-" + secrets.token_hex(12)
        auth.refresh_tokens.add(new_refresh)
        body = {
            "access_token": auth.issue(),
            "token_type": "Bearer",
            "expires_in": int(auth.lifetime_s),
            "refresh_token": new_refresh,
        }
        await respond(send, 200, body)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == "/token":
            await token_endpoint(scope, receive, send)
            return
        if scope["type"] == "http":
            auth.posts += scope["method"] == "POST"
            header = dict(scope["headers"]).get(b"authorization")
            if not auth.valid(header.decode() if header else None):
                await respond(send, 401, {"error": "invalid_token"})
                return
        await inner(scope, receive, send)

    return app


class McpTestServer:
    """An MCP server in a thread of the test process."""

    def __init__(self, *, sse: bool = False, auth: Auth | None = None) -> None:
        self.stats = Stats()
        self.auth = auth or Auth()
        self.mcp = build_server(self.stats)
        self.port = free_port()
        inner = self.mcp.sse_app(sse_path="/mcp") if sse else self.mcp.streamable_http_app()
        # Clients (mas) keep their connections open across turns: do not wait on them to stop.
        config = uvicorn.Config(
            _wrap(inner, self.auth),
            host="127.0.0.1",
            port=self.port,
            log_level="critical",
            timeout_graceful_shutdown=1,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name=f"mcp-{self.port}", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/mcp"

    @property
    def token_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}/token"

    def start(self) -> McpTestServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("MCP test server did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


class McpServerProcess:
    """An MCP server (no auth) as a child process: to be killed while a call is running, or to
    serve SSE (its long-lived streams stay out of the test process)."""

    def __init__(self, *, sse: bool = False) -> None:
        self.port = free_port()
        self.sse = sse
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/mcp"

    def start(self) -> McpServerProcess:
        command = [sys.executable, "-m", "tests.support.mcp_servers", "--port", str(self.port)]
        if self.sse:
            command.append("--sse")
        self.proc = subprocess.Popen(command, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("MCP server process exited")
            try:
                httpx.get(f"http://127.0.0.1:{self.port}/health-probe", timeout=1)
                return self
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError("MCP server process did not start")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--sse", action="store_true")
    args = parser.parse_args()
    server = build_server(Stats())
    app = _wrap(server.sse_app(sse_path="/mcp") if args.sse else server.streamable_http_app(), Auth())
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="critical")


if __name__ == "__main__":
    main()
