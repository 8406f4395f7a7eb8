"""Request-size limits hold before the body is read and before authentication (issue 8, item 6)."""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

import httpx
import pytest

from tests.support.server import ServerThread

pytestmark = pytest.mark.postgres

MIB = 1024 * 1024


def _rss_bytes() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def _connect(url: str) -> socket.socket:
    parts = urlsplit(url)
    return socket.create_connection((parts.hostname, parts.port), timeout=60)


def _read_response(sock: socket.socket) -> tuple[int, bytes]:
    data = b""
    while b"\r\n\r\n" not in data or len(data.split(b"\r\n\r\n", 1)[1]) < _content_length(data):
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


def _content_length(data: bytes) -> int:
    for line in data.split(b"\r\n\r\n", 1)[0].split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return int(line.split(b":", 1)[1])
    return 0


def test_a_declared_300_mb_body_without_a_key_is_refused_unread(mas_server: ServerThread) -> None:
    with _connect(mas_server.url) as sock:
        sock.sendall(
            b"POST /v1/agents HTTP/1.1\r\nHost: mas\r\nContent-Type: application/json\r\n"
            b"Content-Length: 314572800\r\n\r\n"
        )
        # Not one byte of the body is sent: the answer cannot depend on reading it.
        status, body = _read_response(sock)
    assert status == 413
    assert b'"request_too_large"' in body and b"33,554,432" in body


def test_a_streamed_body_is_cut_off_at_the_limit_and_memory_stays_flat(mas_server: ServerThread) -> None:
    before = _rss_bytes()
    sent = 0
    chunk = b"x" * MIB
    with _connect(mas_server.url) as sock:
        sock.sendall(
            b"POST /v1/agents HTTP/1.1\r\nHost: mas\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        try:
            while sent < 300 * MIB:
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                sent += len(chunk)
        except OSError:
            pass  # the server answered and closed while we were still sending
        status, body = _read_response(sock)
    assert status == 413, body
    assert sent < 300 * MIB  # refused part-way, not after all of it
    # At most the limit (32 MiB) was held, never the 300 MiB sent at it.
    assert _rss_bytes() - before < 100 * MIB


def test_bodies_within_the_limit_still_work(http: httpx.Client) -> None:
    description = "d" * 2048
    agent = {"name": "a", "model": "claude-sonnet-4-6", "description": description}
    created = http.post("/v1/agents", json=agent)
    assert created.status_code == 200, created.text
