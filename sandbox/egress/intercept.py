"""A tunnel the proxy terminates, because a vault secret may be substituted in its traffic.

The sandbox's TLS session ends here (the leaf the host minted for this name, signed by the CA
the sandbox trusts); one request is read from it, its `Host` header must name the tunnel's host,
placeholders are replaced where the secret's locations allow (headers, and the body when
enabled: held whole, up to 16 MiB, and sent with a new Content-Length), and the request goes on
over a new TLS connection to the real host, whose certificate is verified against the proxy's
trusted CAs. In the response, secret values the service echoes back become placeholders again
(relay_response); the connection then closes (one request per tunnel, as for plain HTTP).
Standard library only.
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
from .substitution import Secret, substitute_body, substitute_head

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
    host: str,
    port: int,
    hello: bytes,
    streams: tuple[Reader, Writer],
    tls_context: ssl.SSLContext,
    secrets: list[Secret],
    opener: Opener,
) -> None:
    reader, writer = streams
    tls = TlsServer(tls_context, reader, writer)
    try:
        await asyncio.wait_for(tls.handshake(hello), _TIMEOUT_S)
    except (ssl.SSLError, ConnectionError, TimeoutError) as exc:
        log.info("TLS with the sandbox failed for %s: %s", host, type(exc).__name__)
        return
    plain = asyncio.StreamReader(limit=MAX_HEAD)
    feeder = asyncio.create_task(tls.feed(plain))
    try:
        await _exchange(host, port, plain, tls, secrets, opener)
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
            await relay_response(up_reader, tls, secrets, request.method == "HEAD")
    finally:
        up_writer.close()


async def relay_response(up: Reader, tls: TlsServer, secrets: list[Secret], head_only: bool) -> None:
    """The upstream's answer, with any secret value it echoes turned back into its placeholder
    (so a service that repeats the key it got, in an error message say, does not hand it to the
    sandbox): in headers and bodies, unless the body is compressed or a Content-Length body is
    over MAX_BODY. Chunked and close-delimited bodies are scrubbed as they stream."""
    scrub = Scrubber(secrets)
    while True:
        raw = await up.readuntil(b"\r\n\r\n")
        head = scrub.whole(raw)
        if not raw[9:12].startswith(b"1"):
            break
        await tls.write(head)  # an interim answer (103): the final one follows
    status = raw[9:12]
    lines = head.split(b"\r\n")[:-2]
    named = {n.strip().lower(): v.strip().lower() for n, _, v in (line.partition(b":") for line in lines[1:])}
    encoded = named.get(b"content-encoding", b"identity") not in (b"", b"identity")
    length = named.get(b"content-length")
    if head_only or status in (b"204", b"304") or encoded or not scrub.pairs:
        await tls.write(head)
        await _pump(up, tls, None)
    elif length is not None:
        if not length.isdigit() or int(length) > MAX_BODY:
            await tls.write(head)  # too large to hold: relayed as it comes (see the README)
            await _pump(up, tls, None)
            return
        body = scrub.whole(await up.readexactly(int(length)))
        await tls.write(_reframed(lines, f"Content-Length: {len(body)}") + body)
    elif b"chunked" in named.get(b"transfer-encoding", b""):
        await tls.write(_reframed(lines, "Transfer-Encoding: chunked"))
        await _rechunk(up, tls, scrub)
    else:  # delimited by the connection's end
        await tls.write(head)
        await _pump(up, tls, scrub)


class Scrubber:
    """Secret values back into placeholders, also across the pieces of a stream."""

    def __init__(self, secrets: list[Secret]) -> None:
        self.pairs = [
            (s.value.encode(), s.placeholder.encode()) for s in secrets if len(s.value) >= MIN_SCRUBBED
        ]
        self._keep = max((len(v) for v, _ in self.pairs), default=1) - 1
        self._tail = b""

    def whole(self, data: bytes) -> bytes:
        for value, placeholder in self.pairs:
            data = data.replace(value, placeholder)
        return data

    def feed(self, data: bytes) -> bytes:
        """What can go out now; the last bytes wait, they may begin a value."""
        buffered = self.whole(self._tail + data)
        cut = max(len(buffered) - self._keep, 0)
        self._tail = buffered[cut:]
        return buffered[:cut]

    def end(self) -> bytes:
        rest, self._tail = self._tail, b""
        return rest


MIN_SCRUBBED = 8  # shorter values would turn up in unrelated text


def _reframed(lines: list[bytes], framing: str) -> bytes:
    kept = [line for line in lines[1:] if line.partition(b":")[0].strip().lower() not in _FRAMING]
    return b"\r\n".join([lines[0], *kept, framing.encode()]) + b"\r\n\r\n"


_FRAMING = (b"content-length", b"transfer-encoding")


async def _rechunk(up: Reader, tls: TlsServer, scrub: Scrubber) -> None:
    while True:
        size = int((await up.readuntil(b"\r\n")).split(b";")[0].strip(), 16)
        if size == 0:
            break
        out = scrub.feed((await up.readexactly(size + 2))[:-2])
        if out:
            await tls.write(b"%x\r\n%s\r\n" % (len(out), out))
    while await up.readuntil(b"\r\n") != b"\r\n":
        pass  # trailers: dropped
    rest = scrub.end()
    await tls.write((b"%x\r\n%s\r\n" % (len(rest), rest) if rest else b"") + b"0\r\n\r\n")


async def _pump(up: Reader, tls: TlsServer, scrub: Scrubber | None) -> None:
    while data := await up.read(65536):
        out = scrub.feed(data) if scrub is not None else data
        if out:
            await tls.write(out)
    if scrub is not None and (rest := scrub.end()):
        await tls.write(rest)


def _set_length(request: Request, length: int) -> None:
    framing = ("content-length", "transfer-encoding")
    request.headers = [(k, v) for k, v in request.headers if k.lower() not in framing]
    request.headers.append(("Content-Length", str(length)))


async def _answer(tls: TlsServer, status: int, reason: str) -> None:
    with contextlib.suppress(ConnectionError, OSError, ssl.SSLError):
        await tls.write(error_response(status, reason))
