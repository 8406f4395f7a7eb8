"""The egress proxy's own rules, in-process: host matching, the TLS server name of real
ClientHellos (made by Python's ssl module), and names that resolve where sandboxes may not go."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sandbox.egress.policy import Policy, forbidden_address
from sandbox.egress.proxy import EgressProxy
from sandbox.egress.tls import NotTls, server_name


def client_hello(name: str | None) -> bytes:
    context = ssl.create_default_context()
    context.check_hostname = False
    tls = context.wrap_bio(ssl.MemoryBIO(), outgoing := ssl.MemoryBIO(), server_hostname=name)
    with pytest.raises(ssl.SSLWantReadError):
        tls.do_handshake()
    return outgoing.read()


@pytest.mark.parametrize("name", ["allowed.test", "xn--bcher-kva.example", "a" * 63 + ".test"])
def test_server_name_of_a_real_client_hello(name: str) -> None:
    hello = client_hello(name)
    assert server_name(hello[5:]) == name  # the handshake message, after the record header


def test_no_server_name_and_garbage() -> None:
    assert server_name(client_hello(None)[5:]) is None
    with pytest.raises(NotTls):
        server_name(client_hello("cut.test")[5:60])


@pytest.mark.parametrize(
    ("host", "allowed"),
    [
        ("allowed.test", True),
        ("ALLOWED.test.", True),
        ("api.wild.test", True),
        ("deep.api.wild.test", True),
        ("wild.test", False),
        ("notwild.test", False),
        ("allowed.test.evil.test", False),
        ("10.0.0.7", True),
        ("10.0.0.8", False),
    ],
)
def test_policy_matches_names_not_addresses(host: str, allowed: bool) -> None:
    policy = Policy.from_hosts(["allowed.test", "*.wild.test", "10.0.0.7"])
    assert policy.allows(host) is allowed


@pytest.mark.parametrize(
    ("address", "forbidden"),
    [
        ("169.254.169.254", True),
        ("127.0.0.1", True),
        ("::1", True),
        ("::ffff:169.254.169.254", True),
        ("fe80::1%eth0", True),
        ("100.100.100.200", True),
        ("0.0.0.0", True),
        ("10.1.2.3", False),
        ("93.184.216.34", False),
    ],
)
def test_forbidden_addresses(address: str, forbidden: bool) -> None:
    assert forbidden_address(address) is forbidden


@pytest.fixture
async def proxy_socket(tmp_path: Path) -> AsyncIterator[Path]:
    path = tmp_path / "proxy.sock"
    server = await asyncio.start_unix_server(EgressProxy(Policy.from_hosts(["localhost"])).handle, str(path))
    async with server:
        yield path


async def ask(path: Path, request: bytes) -> bytes:
    reader, writer = await asyncio.open_unix_connection(str(path))
    writer.write(request)
    reply = await asyncio.wait_for(reader.read(), 30)
    writer.close()
    return reply


async def test_an_allowed_name_resolving_to_loopback_is_refused(proxy_socket: Path) -> None:
    reply = await ask(proxy_socket, b"GET http://localhost/ HTTP/1.1\r\nHost: localhost\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 403") and b"which sandboxes may not reach" in reply


async def test_malformed_requests_get_400(proxy_socket: Path) -> None:
    cases = [
        b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n",  # origin-form: not a proxy request
        b"NONSENSE\r\n\r\n",
        b"CONNECT localhost HTTP/1.1\r\n\r\n",
        b"POST http://localhost/ HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"POST http://localhost/ HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        b"GET https://localhost/ HTTP/1.1\r\n\r\n",
    ]
    for request in cases:
        reply = await ask(proxy_socket, request)
        assert reply.startswith(b"HTTP/1.1 400"), (request, reply)
