"""The egress proxy of one limited session (or of a session with vault secrets), on a unix socket.

The session container has no network; the tool server relays 127.0.0.1:3128 to this socket. Two
kinds of request get through, and only to hosts of the allow-list:

- plain HTTP (absolute-form URL) to port 80 or 443, whose Host header names the URL's host; one
  request per connection, its body relayed by its own framing, so no second request can follow
  on a connection that was checked for the first;
- CONNECT to port 443, whose TLS ClientHello names (SNI) the CONNECT host itself: a tunnel opened
  to an allowed host's address cannot carry a TLS session for another site (`curl --connect-to`).

Names resolving to loopback, link-local (cloud metadata) or unspecified addresses are refused.
Everything else gets a 403 (a TLS alert once a tunnel is open). A tunnel to a name where a vault
secret may be substituted is terminated here instead of passed through (intercept.py). Under
unrestricted networking (a proxy there only for secrets) every host and port is allowed.
Standard library only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
from pathlib import Path
from urllib.parse import urlsplit

from .intercept import intercept
from .messages import (
    MAX_HEAD,
    BadRequest,
    Refused,
    Request,
    body_length,
    error_response,
    read_head,
    relay_body,
    same_authority,
)
from .minter import Minter
from .policy import HTTP_PORTS, TLS_PORT, Policy, forbidden_address, is_ip, normalise
from .substitution import Secret, SecretsFile
from .tls import NotTls, read_client_hello, server_name

log = logging.getLogger("mas.egress")
Reader = asyncio.StreamReader
Writer = asyncio.StreamWriter

_HEAD_TIMEOUT_S = 30.0
_CONNECT_TIMEOUT_S = 15.0
# TLS alert, fatal, unrecognized_name (112): what a client sees when its SNI is refused.
_TLS_UNRECOGNIZED_NAME = bytes([21, 3, 1, 0, 2, 2, 112])


class EgressProxy:
    def __init__(
        self,
        policy: Policy,
        secrets: SecretsFile | None = None,
        upstream_ca: Path | None = None,
        minter: Minter | None = None,
    ) -> None:
        self.policy = policy
        self.secrets = secrets or SecretsFile(None)
        self.minter = minter or Minter(None)
        self._upstream_ca = upstream_ca
        self._upstream: ssl.SSLContext | None = None

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(read_head(reader), _HEAD_TIMEOUT_S)
            if request.method == "CONNECT":
                await self._tunnel(request, reader, writer)
            else:
                await self._forward(request, reader, writer)
        except Refused as exc:
            log.info("refused: %s", exc)
            await _answer(writer, exc.status, str(exc))
        except BadRequest as exc:
            await _answer(writer, 400, str(exc))
        except (TimeoutError, ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()

    # --- plain HTTP ----------------------------------------------------------------------------
    async def _forward(self, request: Request, reader: Reader, writer: Writer) -> None:
        url = urlsplit(request.target)
        if url.scheme.lower() != "http" or not url.hostname:
            raise BadRequest("a proxy request needs an absolute http:// URL (use CONNECT for https)")
        port = url.port or 80
        self._check(url.hostname, port, self.policy.ports(HTTP_PORTS))
        hosts = request.values("host")
        if len(hosts) > 1 or (hosts and not same_authority(hosts[0], url.hostname, port)):
            raise Refused(403, f"the Host header {hosts!r} does not name the requested host {url.hostname}")
        if not hosts:
            request.headers.append(("Host", url.netloc.rpartition("@")[2]))
        size = body_length(request)
        up_reader, up_writer = await self._open(url.hostname, port)
        try:
            path = (url.path or "/") + (f"?{url.query}" if url.query else "")
            up_writer.write(request.upstream_head(path))
            await relay_body(size, reader, up_writer)
            await _pump(up_reader, writer)
        finally:
            up_writer.close()

    # --- CONNECT -------------------------------------------------------------------------------
    async def _tunnel(self, request: Request, reader: Reader, writer: Writer) -> None:
        host, _, port_text = request.target.rpartition(":")
        if not host or not port_text.isdigit():
            raise BadRequest(f"CONNECT needs host:port, not {request.target!r}")
        port = int(port_text)
        self._check(host, port, self.policy.ports(frozenset({TLS_PORT})))
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        await writer.drain()
        try:
            raw, hello = await asyncio.wait_for(read_client_hello(reader), _HEAD_TIMEOUT_S)
            self._check_sni(host, server_name(hello))
        except (NotTls, Refused) as exc:
            log.info("refused tunnel to %s: %s", request.target, exc)
            writer.write(_TLS_UNRECOGNIZED_NAME)
            await writer.drain()
            return
        interception = self._interception(host)
        if interception is not None:
            await intercept(host, port, raw, (reader, writer), *interception, self._open_tls)
            return
        up_reader, up_writer = await self._open(host, port)
        try:
            up_writer.write(raw)
            await asyncio.gather(_pump(reader, up_writer), _pump(up_reader, writer))
        finally:
            up_writer.close()

    def _interception(self, host: str) -> tuple[ssl.SSLContext, list[Secret]] | None:
        """The TLS context to end a tunnel with and the secrets for it, if any may apply."""
        substitutions = self.secrets.current()
        secrets = substitutions.applying(host)
        if not secrets:
            return None
        if substitutions.covers(host) and substitutions.context is not None:
            return substitutions.context, secrets
        try:
            context = self.minter.context(normalise(host))
        except Exception as exc:  # a tunnel left untouched is the safe failure
            log.error("cannot mint a certificate for %s: %s", host, type(exc).__name__)
            return None
        return (context, secrets) if context is not None else None

    def _check_sni(self, host: str, sni: str | None) -> None:
        if sni is None:
            if not is_ip(host):  # clients send no SNI only to IP literals (which must be listed)
                raise Refused(403, f"the TLS ClientHello names no server, the tunnel is to {host}")
        elif normalise(sni) != normalise(host):
            raise Refused(403, f"the TLS server name {sni!r} is not the tunnel's host {host}")

    # --- shared --------------------------------------------------------------------------------
    def _check(self, host: str, port: int, ports: frozenset[int] | None) -> None:
        if not self.policy.allows(host):
            raise Refused(403, f"{host} is not allowed by this environment's networking policy")
        if not 0 < port < 65536:
            raise Refused(403, f"port {port} is not a port")
        if ports is not None and port not in ports:
            raise Refused(403, f"port {port} is not allowed (only {', '.join(map(str, sorted(ports)))})")

    async def _open_tls(self, host: str, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """A verified TLS connection to the real host (the sandbox's own ended at the proxy)."""
        if self._upstream is None:
            ca = self._upstream_ca
            self._upstream = ssl.create_default_context(cafile=str(ca) if ca and ca.exists() else None)
            self._upstream.set_alpn_protocols(["http/1.1"])
        return await self._open(host, port, self._upstream)

    async def _open(
        self, host: str, port: int, tls: ssl.SSLContext | None = None
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        loop = asyncio.get_running_loop()
        try:
            infos = await asyncio.wait_for(
                loop.getaddrinfo(normalise(host), port, type=socket.SOCK_STREAM), _CONNECT_TIMEOUT_S
            )
        except (OSError, TimeoutError) as exc:
            raise Refused(502, f"cannot resolve {host}: {exc}") from exc
        addresses = [str(info[4][0]) for info in infos]
        usable = [address for address in addresses if not forbidden_address(address)]
        if not usable:
            raise Refused(403, f"{host} resolves to {', '.join(addresses)}, which sandboxes may not reach")
        try:
            name = normalise(host) if tls is not None else None
            return await asyncio.wait_for(
                asyncio.open_connection(usable[0], port, limit=MAX_HEAD, ssl=tls, server_hostname=name),
                _CONNECT_TIMEOUT_S,
            )
        except (OSError, TimeoutError) as exc:
            raise Refused(502, f"cannot connect to {host}:{port}: {exc}") from exc


async def _pump(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError, OSError):
        while data := await source.read(65536):
            sink.write(data)
            await sink.drain()
        if sink.can_write_eof():
            sink.write_eof()


async def _answer(writer: asyncio.StreamWriter, status: int, reason: str) -> None:
    with contextlib.suppress(ConnectionError, OSError):
        writer.write(error_response(status, reason))
        await writer.drain()
