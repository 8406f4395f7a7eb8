"""A tunnel the proxy terminates, because a vault secret may be substituted in its traffic.

The sandbox's TLS session ends here (the leaf the host minted for this name, signed by the CA
the sandbox trusts); one request is read from it, its `Host` header must name the tunnel's host,
placeholders are replaced where the secret's locations allow (headers, and the body when
enabled: held whole, up to 16 MiB, and sent with a new Content-Length), and the request goes on
over a new TLS connection to the real host, whose certificate is verified against the proxy's
trusted CAs. The response is relayed unchanged; the connection then closes (one request per
tunnel, as for plain HTTP). Standard library only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Awaitable, Callable

from .messages import (
    MAX_HEAD,
    BadRequest,
    Refused,
    Request,
    TooLarge,
    body_length,
    error_response,
    read_body,
    read_head,
    relay_body,
    same_authority,
)
from .substitution import Secret, Substitutions, substitute_body, substitute_head

log = logging.getLogger("mas.egress")
Reader = asyncio.StreamReader
Writer = asyncio.StreamWriter
Opener = Callable[[str, int], Awaitable[tuple[Reader, Writer]]]

MAX_BODY = 16 * 1024 * 1024
_TIMEOUT_S = 30.0


class TlsServer:
    """The server side of TLS over an asyncio stream whose first bytes (the ClientHello) were
    already read to check the server name: fed to an ``SSLObject`` by hand."""

    def __init__(self, context: ssl.SSLContext, reader: Reader, writer: Writer) -> None:
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self._tls = context.wrap_bio(self._incoming, self._outgoing, server_side=True)
        self._reader = reader
        self._writer = writer

    async def handshake(self, first: bytes) -> None:
        self._incoming.write(first)
        while True:
            try:
                self._tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                await self._flush()
                if not await self._receive():
                    raise ConnectionError("the client left during the TLS handshake") from None
        await self._flush()

    async def read(self) -> bytes:
        """Decrypted bytes; b"" at the end."""
        while True:
            try:
                return self._tls.read(65536)
            except ssl.SSLWantReadError:
                await self._flush()
                if not await self._receive():
                    return b""
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                return b""

    async def feed(self, plain: Reader) -> None:
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            while data := await self.read():
                plain.feed_data(data)
        plain.feed_eof()

    async def write(self, data: bytes) -> None:
        self._tls.write(data)
        await self._flush()

    async def close(self) -> None:
        with contextlib.suppress(ssl.SSLError, ConnectionError, OSError):
            self._tls.unwrap()  # close_notify; the peer's own is not waited for
        with contextlib.suppress(ConnectionError, OSError):
            await self._flush()

    async def _receive(self) -> bool:
        data = await self._reader.read(65536)
        if not data:
            self._incoming.write_eof()
            return False
        self._incoming.write(data)
        return True

    async def _flush(self) -> None:
        data = self._outgoing.read()
        if data:
            self._writer.write(data)
            await self._writer.drain()


async def intercept(
    host: str, port: int, hello: bytes, reader: Reader, writer: Writer, subs: Substitutions, opener: Opener
) -> None:
    assert subs.context is not None  # covers() said so
    tls = TlsServer(subs.context, reader, writer)
    try:
        await asyncio.wait_for(tls.handshake(hello), _TIMEOUT_S)
    except (ssl.SSLError, ConnectionError, TimeoutError) as exc:
        log.info("TLS with the sandbox failed for %s: %s", host, type(exc).__name__)
        return
    plain = asyncio.StreamReader(limit=MAX_HEAD)
    feeder = asyncio.create_task(tls.feed(plain))
    try:
        await _exchange(host, port, plain, tls, subs.for_host(host), opener)
    except Refused as exc:
        log.info("refused inside the tunnel to %s: %s", host, exc)
        await _answer(tls, exc.status, str(exc))
    except TooLarge as exc:
        await _answer(tls, 413, str(exc))
    except BadRequest as exc:
        await _answer(tls, 400, str(exc))
    except (TimeoutError, ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
        pass
    finally:
        feeder.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await feeder
        await tls.close()


async def _exchange(
    host: str, port: int, plain: Reader, tls: TlsServer, secrets: list[Secret], opener: Opener
) -> None:
    request = await asyncio.wait_for(read_head(plain), _TIMEOUT_S)
    if not (request.target.startswith("/") or request.target == "*"):
        raise BadRequest("inside a tunnel a request names a path (origin form)")
    hosts = request.values("host")
    if len(hosts) != 1 or not same_authority(hosts[0], host, port, default=443):
        raise Refused(403, f"the Host header {hosts!r} does not name the tunnel's host {host}")
    substituted = substitute_head(request, secrets)
    if any(v.lower() == "100-continue" for v in request.values("expect")):
        await tls.write(b"HTTP/1.1 100 Continue\r\n\r\n")  # answered here: the body is read here
    request.headers = [(k, v) for k, v in request.headers if k.lower() != "expect"]
    size = body_length(request)
    body: bytes | None = None
    if size != 0 and any(s.body for s in secrets):
        original = await read_body(size, plain, MAX_BODY)
        body = substitute_body(original, secrets)
        substituted += body != original
        _set_length(request, len(body))
    if substituted:
        log.info("substituted vault secrets in a request to %s", host)  # never the value
    up_reader, up_writer = await opener(host, port)
    try:
        up_writer.write(request.upstream_head(request.target))
        if body is not None:
            up_writer.write(body)
        else:
            await relay_body(size, plain, up_writer)
        await up_writer.drain()
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            while data := await up_reader.read(65536):
                await tls.write(data)
    finally:
        up_writer.close()


def _set_length(request: Request, length: int) -> None:
    framing = ("content-length", "transfer-encoding")
    request.headers = [(k, v) for k, v in request.headers if k.lower() not in framing]
    request.headers.append(("Content-Length", str(length)))


async def _answer(tls: TlsServer, status: int, reason: str) -> None:
    with contextlib.suppress(ConnectionError, OSError, ssl.SSLError):
        await tls.write(error_response(status, reason))
