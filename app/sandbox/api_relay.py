"""The way a dispatched sandbox reaches the mas API: a unix socket relayed to the API's address.

A sandbox's network cannot reach the Docker host (see firewall.py), and a limited sandbox has no
network at all, so the dispatcher listens on a socket in the sandbox's state directory
(bind-mounted into the container) and copies bytes to the API's host and port. Only bytes pass:
TLS, if the API URL is https, runs end to end between the worker and the API, and the worker's
sessions token is all it can present.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

log = logging.getLogger(__name__)

_CHUNK = 65536


def api_address(api_url: str) -> tuple[str, int]:
    parts = urlsplit(api_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"the API URL must be http(s)://host[:port], not {api_url!r}")
    return parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(_CHUNK):
            writer.write(data)
            await writer.drain()
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            writer.close()


# A unix socket's address holds at most 107 bytes of path; a deep state directory is longer.
_MAX_SOCKET_PATH = 100


def _clear(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)  # left by a previous dispatcher process


@contextlib.contextmanager
def bindable(path: Path) -> Iterator[str]:
    """An address for binding ``path``: itself when short enough, else the same file named
    through ``/proc/self/fd/<its directory>`` (Linux), which is short whatever the depth."""
    if len(os.fsencode(path)) <= _MAX_SOCKET_PATH:
        yield str(path)
        return
    directory = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        yield f"/proc/self/fd/{directory}/{path.name}"
    finally:
        os.close(directory)


class ApiRelay:
    """One listening socket per sandbox, keyed by its work item."""

    def __init__(self) -> None:
        self._servers: dict[str, asyncio.Server] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def has(self, key: str) -> bool:
        return key in self._servers

    async def open(self, key: str, path: Path, api_url: str) -> None:
        if key in self._servers:
            return
        host, port = api_address(api_url)

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                up_reader, up_writer = await asyncio.open_connection(host, port)
            except OSError as exc:
                log.warning("the API at %s:%s refused the relay of %s: %s", host, port, key, exc)
                writer.close()
                return
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))

        await asyncio.to_thread(_clear, path)
        with bindable(path) as address:
            server = await asyncio.start_unix_server(handle, address)
        await asyncio.to_thread(path.chmod, 0o666)  # the worker in the sandbox may run as any user
        self._servers[key] = server

    async def close(self, key: str) -> None:
        server = self._servers.pop(key, None)
        if server is not None:
            server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 5)

    async def close_all(self) -> None:
        for key in list(self._servers):
            await self.close(key)
