"""The relay a dispatched sandbox reaches the mas API through: bytes both ways, and a socket
under a state directory deeper than a unix socket address can name (107 bytes)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from app.sandbox.api_relay import ApiRelay, bindable


async def test_a_deep_socket_path_relays_bytes_both_ways(tmp_path: Path) -> None:
    async def upstream(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"echo:" + await reader.readexactly(5))
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(upstream, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    deep = tmp_path.joinpath(*["a-long-directory-name"] * 6, "api.sock")
    assert len(str(deep)) > 108
    relay = ApiRelay()
    try:
        await relay.open("work_1", deep, f"http://127.0.0.1:{port}")
        assert relay.has("work_1") and deep.is_socket()
        with bindable(deep) as address:  # a client names it the same way (a sandbox sees a short path)
            reader, writer = await asyncio.open_unix_connection(address)
        writer.write(b"hello")
        await writer.drain()
        assert await reader.read() == b"echo:hello"
        writer.close()
    finally:
        await relay.close_all()
        server.close()
        await server.wait_closed()
