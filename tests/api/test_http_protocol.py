"""The httptools protocol `mas serve` runs (app/api/http_protocol.py): a request body reaches the
app byte-exact, in order, whether its pieces are taken one by one as they arrive or pile up while
the app is busy (then they are joined as uvicorn joins them), over a real socket."""

from __future__ import annotations

import asyncio
import hashlib
import os
import socket
import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn
from starlette.types import Receive, Scope, Send

from app.api.http_protocol import http_protocol
from tests.support.server import free_port


async def _digest_app(scope: Scope, receive: Receive, send: Send) -> None:
    """Answers `<sha256> <size> <messages>` of the body; `x-slow` makes it sleep before each
    receive, so that pieces pile up in the protocol in the meantime."""
    if scope["type"] != "http":
        return
    slow = (b"x-slow", b"1") in scope["headers"]
    digest, size, messages = hashlib.sha256(), 0, 0
    more = True
    while more:
        if slow:
            await asyncio.sleep(0.002)
        message = await receive()
        body = message.get("body", b"")
        assert isinstance(body, bytes)
        digest.update(body)
        size += len(body)
        messages += 1
        more = message.get("more_body", False)
    answer = f"{digest.hexdigest()} {size} {messages}".encode()
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"%d" % len(answer))]}
    )
    await send({"type": "http.response.body", "body": answer})


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    chosen = free_port()
    config = uvicorn.Config(
        _digest_app, host="127.0.0.1", port=chosen, log_level="warning", http=http_protocol()
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.02)
    yield chosen
    server.should_exit = True
    thread.join(10)


def _post(port: int, body: bytes, piece: int, *, slow: bool) -> tuple[str, int, int]:
    head = f"POST / HTTP/1.1\r\nhost: x\r\ncontent-length: {len(body)}\r\nconnection: close\r\n"
    head += "x-slow: 1\r\n\r\n" if slow else "\r\n"
    with socket.create_connection(("127.0.0.1", port)) as conn:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn.sendall(head.encode())
        for start in range(0, len(body), piece):
            conn.sendall(body[start : start + piece])
        answer = b""
        while more := conn.recv(65536):
            answer += more
    digest, size, messages = answer.split(b"\r\n\r\n", 1)[1].decode().split()
    return digest, int(size), int(messages)


def test_the_protocol_is_httptools_based() -> None:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    protocol = http_protocol()
    assert isinstance(protocol, type) and issubclass(protocol, HttpToolsProtocol)


@pytest.mark.parametrize(
    ("size", "piece", "slow"),
    [(3_000_000, 1 << 20, False), (3_000_000, 1 << 20, True), (200_000, 97, False), (200_000, 97, True)],
)
def test_a_body_arrives_byte_exact_however_it_is_sent(port: int, size: int, piece: int, slow: bool) -> None:
    body = os.urandom(size)
    digest, received, messages = _post(port, body, piece, slow=slow)
    assert (digest, received) == (hashlib.sha256(body).hexdigest(), size)
    assert messages >= 1
