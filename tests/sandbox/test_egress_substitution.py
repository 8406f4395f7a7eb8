"""Vault secrets substituted by the egress proxy, in-process: a real HTTPS upstream on loopback
(its own CA, given to the proxy as the upstream bundle), a real TLS client that trusts the
instance CA, and the proxy between them on a unix socket. Loopback is where sandboxes may never
go, so these tests alone let the proxy reach it; the Docker tests (test_egress_secrets.py) run
the same paths in containers."""

from __future__ import annotations

import asyncio
import base64
import http.server
import json
import socket
import ssl
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import sandbox.egress.proxy as proxy_module
from app.sandbox.egress import substitution_names
from app.sandbox.egress_ca import EgressAuthority
from sandbox.egress.messages import Request
from sandbox.egress.minter import Minter
from sandbox.egress.policy import Policy
from sandbox.egress.substitution import Secret, SecretsFile, substitute_body, substitute_head

SECRET = "s3cr3t-value"


class _Echo(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    seen: list[dict[str, Any]]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.seen.append({"headers": dict(self.headers), "body": body.decode()})
        if self.path.startswith("/reflect"):  # says back what it got, as an error message might
            self._reflect(f"invalid key: {self.headers['Authorization']}!".encode())
            return
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def _reflect(self, text: bytes) -> None:
        self.send_response(401)
        self.send_header("X-Echo", text.decode())
        if self.path == "/reflect-chunked":  # in 5-byte chunks: values cut across them
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for i in range(0, len(text), 5):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(text[i : i + 5]), text[i : i + 5]))
            self.wfile.write(b"0\r\n\r\n")
            return
        self.send_header("Content-Length", str(len(text)))
        self.end_headers()
        self.wfile.write(text)

    do_GET = do_POST

    def log_message(self, *args: Any) -> None:
        pass


@dataclass
class Upstream:
    port: int
    ca: Path
    seen: list[dict[str, Any]]


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Upstream]:
    """An HTTPS server for `localhost` with a certificate from a CA of its own."""
    directory = tmp_path_factory.mktemp("upstream")
    authority = EgressAuthority(directory, "upstream")
    (directory / "server.pem").write_bytes(authority.leaf(["localhost"]))
    seen: list[dict[str, Any]] = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), type("Echo", (_Echo,), {"seen": seen}))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(directory / "server.pem"))
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield Upstream(server.server_address[1], authority.directory / "ca.pem", seen)
    server.shutdown()
    server.server_close()


@dataclass
class Proxy:
    socket: Path
    authority: EgressAuthority
    config: Path
    upstream: Upstream

    def configure(self, secrets: list[dict[str, Any]], names: list[str]) -> str:
        """Writes the secrets file as the host does; the placeholder of variable TOKEN."""
        placeholder = self.authority.placeholder("sesn_test", "TOKEN")
        base = {"placeholder": placeholder, "value": SECRET, "hosts": None, "header": True, "body": False}
        entries = [{**base, **s} for s in secrets]
        (self.config / "leaf.pem").write_bytes(self.authority.leaf(names) if names else b"")
        (self.config / "secrets.json").write_text(json.dumps({"secrets": entries, "names": names}))
        return placeholder


@pytest.fixture
async def proxy(tmp_path: Path, upstream: Upstream, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Proxy]:
    monkeypatch.setattr(proxy_module, "forbidden_address", lambda address: False)
    authority = EgressAuthority(tmp_path / "ca", "test")
    config = tmp_path / "proxy"
    config.mkdir()
    secrets = SecretsFile(config / "secrets.json")
    egress = proxy_module.EgressProxy(Policy.from_hosts([], any_host=True), secrets, upstream.ca)
    path = tmp_path / "proxy.sock"
    server = await asyncio.start_unix_server(egress.handle, str(path))
    async with server:
        yield Proxy(path, authority, config, upstream)
    upstream.seen.clear()


def _exchange(proxy: Proxy, request: str, trust: Path, body: bytes = b"") -> bytes:
    """CONNECT through the proxy, TLS trusting ``trust``, one request; the whole reply."""
    port = proxy.upstream.port
    with socket.socket(socket.AF_UNIX) as raw:
        raw.settimeout(30)
        raw.connect(str(proxy.socket))
        raw.sendall(f"CONNECT localhost:{port} HTTP/1.1\r\nHost: localhost:{port}\r\n\r\n".encode())
        assert raw.recv(1000).startswith(b"HTTP/1.1 200")
        context = ssl.create_default_context(cafile=str(trust))
        with context.wrap_socket(raw, server_hostname="localhost") as tls:
            tls.sendall(request.replace("{port}", str(port)).encode() + body)
            reply = b""
            while chunk := tls.recv(65536):
                reply += chunk
    return reply


async def send(proxy: Proxy, request: str, body: bytes = b"", trust: Path | None = None) -> bytes:
    trust = trust or proxy.authority.directory / "ca.pem"
    return await asyncio.to_thread(_exchange, proxy, request, trust, body)


def post(headers: str, body: str) -> str:
    length = f"Content-Length: {len(body)}\r\nConnection: close\r\n"
    return f"POST /x HTTP/1.1\r\nHost: localhost:{{port}}\r\n{headers}{length}\r\n{body}"


async def test_header_gets_the_value_and_the_body_only_where_enabled(proxy: Proxy) -> None:
    placeholder = proxy.configure([{}], ["localhost"])
    reply = await send(proxy, post(f"Authorization: Bearer {placeholder}\r\n", f'{{"k": "{placeholder}"}}'))
    assert reply.startswith(b"HTTP/1.1 200")
    [seen] = proxy.upstream.seen
    assert seen["headers"]["Authorization"] == f"Bearer {SECRET}"
    assert seen["body"] == f'{{"k": "{placeholder}"}}'  # body not enabled
    assert SECRET.encode() not in reply


async def test_body_only_credential_leaves_headers_alone(proxy: Proxy) -> None:
    placeholder = proxy.configure([{"header": False, "body": True}], ["localhost"])
    await send(proxy, post(f"X-Key: {placeholder}\r\n", f"key={placeholder}&x=1"))
    [seen] = proxy.upstream.seen
    assert seen["headers"]["X-Key"] == placeholder
    assert seen["body"] == f"key={SECRET}&x=1"
    assert seen["headers"]["Content-Length"] == str(len(f"key={SECRET}&x=1"))


async def test_chunked_body_and_basic_credentials(proxy: Proxy) -> None:
    placeholder = proxy.configure([{"body": True}], ["localhost"])
    basic = base64.b64encode(f"user:{placeholder}".encode()).decode()
    chunk = f"a={placeholder}".encode()
    head = (
        "POST /x HTTP/1.1\r\nHost: localhost:{port}\r\nTransfer-Encoding: chunked\r\n"
        f"Authorization: Basic {basic}\r\nExpect: 100-continue\r\n\r\n"
    )
    reply = await send(proxy, head, f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n0\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 100 Continue")
    [seen] = proxy.upstream.seen
    assert base64.b64decode(seen["headers"]["Authorization"].split()[1]) == f"user:{SECRET}".encode()
    assert seen["body"] == f"a={SECRET}"


async def test_a_host_outside_the_credentials_hosts_gets_the_placeholder(proxy: Proxy) -> None:
    placeholder = proxy.configure([{"hosts": ["api.example.com"]}], ["localhost"])
    # No secret applies: not terminated even though the certificate would cover it.
    await send(proxy, post(f"Authorization: Bearer {placeholder}\r\n", ""), trust=proxy.upstream.ca)
    [seen] = proxy.upstream.seen
    assert seen["headers"]["Authorization"] == f"Bearer {placeholder}"


async def test_names_without_a_certificate_are_tunnelled_untouched(proxy: Proxy) -> None:
    placeholder = proxy.configure([{}], [])
    # Not terminated: the client sees the upstream's own certificate, and its request unchanged.
    await send(proxy, post(f"Authorization: Bearer {placeholder}\r\n", ""), trust=proxy.upstream.ca)
    [seen] = proxy.upstream.seen
    assert seen["headers"]["Authorization"] == f"Bearer {placeholder}"


async def test_rotation_reaches_the_next_request(proxy: Proxy) -> None:
    placeholder = proxy.configure([{}], ["localhost"])
    await send(proxy, post(f"Authorization: Bearer {placeholder}\r\n", ""))
    proxy.configure([{"value": "rotated-value"}], ["localhost"])
    await send(proxy, post(f"Authorization: Bearer {placeholder}\r\n", ""))
    assert [s["headers"]["Authorization"] for s in proxy.upstream.seen] == [
        f"Bearer {SECRET}",
        "Bearer rotated-value",
    ]
    proxy.configure([], ["localhost"])  # archived: nothing to substitute, a plain tunnel again
    await send(proxy, post(f"Authorization: Bearer {placeholder}\r\n", ""), trust=proxy.upstream.ca)
    assert proxy.upstream.seen[-1]["headers"]["Authorization"] == f"Bearer {placeholder}"


async def test_another_host_header_inside_the_tunnel_is_refused(proxy: Proxy) -> None:
    placeholder = proxy.configure([{}], ["localhost"])
    request = f"GET / HTTP/1.1\r\nHost: evil.example\r\nAuthorization: Bearer {placeholder}\r\n\r\n"
    reply = await send(proxy, request)
    assert reply.startswith(b"HTTP/1.1 403") and proxy.upstream.seen == []


async def test_an_upstream_the_proxy_cannot_verify_gets_no_secret(
    proxy: Proxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    placeholder = proxy.configure([{}], ["localhost"])
    untrusted = proxy.config / "other-ca.pem"
    untrusted.write_bytes(proxy.authority.certificate_pem())  # not the upstream's CA
    egress = proxy_module.EgressProxy(
        Policy.from_hosts([], any_host=True), SecretsFile(proxy.config / "secrets.json"), untrusted
    )
    path = proxy.socket.with_name("strict.sock")
    async with await asyncio.start_unix_server(egress.handle, str(path)):
        reply = await send(Proxy(path, proxy.authority, proxy.config, proxy.upstream), post("", ""))
    assert reply.startswith(b"HTTP/1.1 502") and b"CERTIFICATE_VERIFY_FAILED" in reply
    assert proxy.upstream.seen == [] and placeholder


async def test_hosts_not_known_ahead_get_a_leaf_minted_by_the_proxy(proxy: Proxy) -> None:
    placeholder = proxy.configure([{}], [])  # no pre-minted names: both sides unrestricted
    intermediate = proxy.config / "intermediate.pem"
    intermediate.write_bytes(proxy.authority.intermediate(None))
    egress = proxy_module.EgressProxy(
        Policy.from_hosts([], any_host=True),
        SecretsFile(proxy.config / "secrets.json"),
        proxy.upstream.ca,
        Minter(intermediate),
    )
    path = proxy.socket.with_name("minting.sock")
    async with await asyncio.start_unix_server(egress.handle, str(path)):
        # The client trusts the instance CA only: leaf and intermediate chain up to it.
        await send(
            Proxy(path, proxy.authority, proxy.config, proxy.upstream), post(f"X-Key: {placeholder}\r\n", "")
        )
    [seen] = proxy.upstream.seen
    assert seen["headers"]["X-Key"] == SECRET
    assert proxy.authority.intermediate(intermediate.read_bytes()) == intermediate.read_bytes()  # kept


@pytest.mark.parametrize("path", ["/reflect", "/reflect-chunked"])
async def test_a_value_the_service_echoes_back_is_scrubbed(proxy: Proxy, path: str) -> None:
    placeholder = proxy.configure([{}], ["localhost"])
    request = post(f"Authorization: Bearer {placeholder}\r\n", "").replace("/x", path)
    reply = await send(proxy, request)
    assert proxy.upstream.seen[0]["headers"]["Authorization"] == f"Bearer {SECRET}"  # it got it
    assert SECRET.encode() not in reply
    head, _, body = reply.partition(b"\r\n\r\n")
    assert f"X-Echo: invalid key: Bearer {placeholder}!".encode() in head
    if path == "/reflect-chunked":
        body = b"".join(body.split(b"\r\n")[1::2])
    assert body == f"invalid key: Bearer {placeholder}!".encode()


def test_header_values_with_line_breaks_are_never_put_in_a_header() -> None:
    secret = Secret("ph_x", "a\r\nInjected: 1", None, header=True, body=True)
    request = Request("GET", "/", "HTTP/1.1", [("Authorization", "Bearer ph_x")])
    assert substitute_head(request, [secret]) == 0
    assert request.headers == [("Authorization", "Bearer ph_x")]
    assert substitute_body(b"v=ph_x", [secret]) == b"v=a\r\nInjected: 1"


@pytest.mark.parametrize(
    ("environment", "credential", "names"),
    [
        (None, None, []),  # both unrestricted: no names known ahead (see the README)
        (None, ["api.example.com", "*.example.org"], ["api.example.com", "*.example.org"]),
        (["a.test", "*.b.test"], None, ["a.test", "*.b.test"]),
        (["a.test", "*.b.test"], ["x.b.test", "c.test"], ["x.b.test"]),
        (["a.test", "x.b.test"], ["*.b.test"], ["x.b.test"]),
        (["*.b.test"], ["*.b.test"], ["*.b.test"]),
        (["*.b.test"], ["*.deep.b.test", "b.test"], ["*.deep.b.test"]),
        (["a.test"], ["A.Test."], ["a.test"]),
    ],
)
def test_substitution_needs_both_allow_lists(
    environment: list[str] | None, credential: list[str] | None, names: list[str]
) -> None:
    assert substitution_names(environment, credential) == names


def test_the_ca_key_is_private_and_leaves_are_cached(tmp_path: Path) -> None:
    authority = EgressAuthority(tmp_path, "test")
    first = authority.leaf(["a.test", "*.b.test"])
    assert (authority.directory / "ca-key.pem").stat().st_mode & 0o777 == 0o600
    assert authority.directory.stat().st_mode & 0o777 == 0o700
    assert authority.leaf(["*.b.test", "a.test"]) == first  # same names, same leaf
    again = EgressAuthority(tmp_path, "test")  # another process: the same CA
    assert again.certificate_pem() == authority.certificate_pem()
    assert again.placeholder("s", "TOKEN") == authority.placeholder("s", "TOKEN")
    assert authority.placeholder("s", "TOKEN") != authority.placeholder("t", "TOKEN")
