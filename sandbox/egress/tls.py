"""The server name (SNI) of a TLS ClientHello, read without decrypting anything.

Standard library only: this module runs inside the egress proxy container.
"""

from __future__ import annotations

import asyncio
import struct

_HANDSHAKE = 22
_CLIENT_HELLO = 1
_SERVER_NAME = 0
_MAX_HELLO = 64 * 1024


class NotTls(ValueError):
    """The bytes are not a TLS ClientHello."""


async def read_client_hello(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    """(raw bytes as received, the ClientHello handshake message), across as many records as it spans."""
    raw = b""
    message = b""
    while len(message) < 4 or len(message) < 4 + int.from_bytes(message[1:4], "big"):
        header = await reader.readexactly(5)
        if header[0] != _HANDSHAKE or header[1] != 3:
            raise NotTls("the tunnel did not start with a TLS handshake")
        length = struct.unpack("!H", header[3:5])[0]
        body = await reader.readexactly(length)
        raw += header + body
        message += body
        if len(raw) > _MAX_HELLO:
            raise NotTls("the TLS ClientHello is too large")
    if message[0] != _CLIENT_HELLO:
        raise NotTls("the first TLS handshake message is not a ClientHello")
    return raw, message[: 4 + int.from_bytes(message[1:4], "big")]


def server_name(hello: bytes) -> str | None:
    """The host_name of the server_name extension, or None when the client sent none."""
    try:
        return _server_name(memoryview(hello))
    except (IndexError, struct.error, UnicodeDecodeError) as exc:
        raise NotTls(f"malformed ClientHello: {exc}") from exc


def _server_name(hello: memoryview) -> str | None:
    at = 4 + 2 + 32  # handshake header, client_version, random
    at += 1 + hello[at]  # session_id
    at += 2 + struct.unpack_from("!H", hello, at)[0]  # cipher_suites
    at += 1 + hello[at]  # compression_methods
    if at == len(hello):
        return None  # no extensions at all
    end = at + 2 + struct.unpack_from("!H", hello, at)[0]
    at += 2
    while at + 4 <= end:
        kind, length = struct.unpack_from("!HH", hello, at)
        at += 4
        if kind == _SERVER_NAME:
            return _host_name(hello[at : at + length])
        at += length
    return None


def _host_name(extension: memoryview) -> str | None:
    at, end = 2, 2 + struct.unpack_from("!H", extension, 0)[0]
    while at + 3 <= end:
        kind, length = extension[at], struct.unpack_from("!H", extension, at + 1)[0]
        if kind == 0:
            return bytes(extension[at + 3 : at + 3 + length]).decode("ascii")
        at += 3 + length
    return None
