"""HTTP/1.1 request heads and bodies as the egress proxy relays them (one request per connection).

Standard library only: this module runs inside the egress proxy container.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

MAX_HEAD = 64 * 1024
# Hop-by-hop headers, and the proxy's own: never passed upstream.
_HOP = frozenset(
    {"connection", "keep-alive", "proxy-connection", "proxy-authorization", "te", "trailer", "upgrade"}
)


class BadRequest(ValueError):
    """Malformed HTTP from the client: answered with 400."""


class Refused(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


def error_response(status: int, reason: str) -> bytes:
    phrase = {400: "Bad Request", 403: "Forbidden", 413: "Content Too Large", 502: "Bad Gateway"}.get(
        status, "Error"
    )
    body = f"mas egress proxy: {reason}\n".encode()
    head = f"HTTP/1.1 {status} {phrase}\r\nContent-Type: text/plain\r\nContent-Length: {len(body)}\r\n"
    return head.encode() + b"Connection: close\r\n\r\n" + body


def same_authority(header: str, host: str, port: int, default: int = 80) -> bool:
    """Whether a Host header (`name`, `name:port`, `[v6]:port`) names ``host`` on ``port``."""
    value = header.strip()
    if value.startswith("["):
        name, _, rest = value[1:].partition("]")
        given = rest.removeprefix(":")
    else:
        name, _, given = value.partition(":")
    if given and not given.isdigit():
        return False
    return _norm(name) == _norm(host) and (int(given) if given else default) == port


def _norm(host: str) -> str:
    return host.strip().strip("[]").lower().rstrip(".")


@dataclass
class Request:
    method: str
    target: str
    version: str
    headers: list[tuple[str, str]] = field(default_factory=list)

    def values(self, name: str) -> list[str]:
        return [value for key, value in self.headers if key.lower() == name]

    def upstream_head(self, path: str) -> bytes:
        """Origin-form request line, end-to-end headers only, and `Connection: close`."""
        kept = [(k, v) for k, v in self.headers if k.lower() not in _HOP]
        lines = [f"{self.method} {path} {self.version}", *(f"{k}: {v}" for k, v in kept), "Connection: close"]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


async def read_head(reader: asyncio.StreamReader) -> Request:
    try:
        raw = await reader.readuntil(b"\r\n\r\n")
    except asyncio.LimitOverrunError as exc:
        raise BadRequest("request head too large") from exc
    except asyncio.IncompleteReadError as exc:
        raise BadRequest("connection closed inside the request head") from exc
    lines = raw.decode("latin-1").split("\r\n")[:-2]
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise BadRequest(f"not an HTTP/1.x request line: {lines[0][:100]!r}")
    request = Request(parts[0].upper(), parts[1], parts[2])
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if not colon or not name or name != name.strip():
            raise BadRequest(f"malformed header line: {line[:100]!r}")
        request.headers.append((name, value.strip()))
    return request


def body_length(request: Request) -> int | None:
    """The announced body size, None for chunked; a 400 for ambiguous framing (smuggling)."""
    lengths = request.values("content-length")
    chunked = any("chunked" in value.lower() for value in request.values("transfer-encoding"))
    if (chunked and lengths) or len(set(lengths)) > 1:
        raise BadRequest("ambiguous request body length")
    if chunked:
        return None
    if lengths and not lengths[0].isdigit():
        raise BadRequest("invalid Content-Length")
    return int(lengths[0]) if lengths else 0


async def relay_body(size: int | None, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Exactly the body the head announced, no byte more: nothing can be smuggled behind it."""
    if size is None:
        await _relay_chunked(reader, writer)
    else:
        await _relay_exactly(size, reader, writer)


async def _relay_exactly(size: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while size > 0:
        data = await reader.read(min(size, 65536))
        if not data:
            raise BadRequest("connection closed inside the request body")
        writer.write(data)
        await writer.drain()
        size -= len(data)


async def _relay_chunked(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while True:
        line = await reader.readuntil(b"\r\n")
        writer.write(line)
        try:
            size = int(line.split(b";")[0].strip(), 16)
        except ValueError as exc:
            raise BadRequest("invalid chunk size") from exc
        if size == 0:
            break
        await _relay_exactly(size + 2, reader, writer)  # the chunk and its CRLF
    while (trailer := await reader.readuntil(b"\r\n")) != b"\r\n":
        writer.write(trailer)
    writer.write(b"\r\n")
    await writer.drain()


class TooLarge(ValueError):
    """A body the proxy would have to hold in memory is over its limit: answered with 413."""


async def read_body(size: int | None, reader: asyncio.StreamReader, limit: int) -> bytes:
    """The whole body the head announced (chunks joined), for a proxy that changes it."""
    if size is not None:
        if size > limit:
            raise TooLarge(f"request body over {limit} bytes")
        try:
            return await reader.readexactly(size)
        except asyncio.IncompleteReadError as exc:
            raise BadRequest("connection closed inside the request body") from exc
    parts: list[bytes] = []
    total = 0
    while True:
        line = await reader.readuntil(b"\r\n")
        try:
            chunk = int(line.split(b";")[0].strip(), 16)
        except ValueError as exc:
            raise BadRequest("invalid chunk size") from exc
        if chunk == 0:
            break
        total += chunk
        if total > limit:
            raise TooLarge(f"request body over {limit} bytes")
        parts.append((await reader.readexactly(chunk + 2))[:-2])
    while await reader.readuntil(b"\r\n") != b"\r\n":
        pass  # trailers: dropped (the body goes on with a Content-Length)
    return b"".join(parts)
