"""Inside a `mas dispatch` sandbox: the SDK's own `EnvironmentWorker` serving one claimed work item.

The dispatcher polled and acknowledged the item; this process gets only the item's ids and its
`secret` (whose sessions token is the one credential here: the environment key never enters a
sandbox) and runs `EnvironmentWorker.handle_item()` unmodified: heartbeat, skills, memory stores,
the agent toolset against /workspace, force-stop on exit. The mas API is reached through a unix
socket the dispatcher relays (the sandbox's network cannot reach the host); with limited
networking, 127.0.0.1:3128 is relayed to the egress proxy's socket as in a cloud sandbox.

Exit status: 0 when the worker finished the item, 1 when it failed (the traceback is on stderr).
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys

# The SDK and its dependencies live apart from the image's site-packages (the agent's python3
# must not see them); only this process puts them on its path.
sys.path.insert(0, "/opt/mas/dispatch/site")

import httpx2  # noqa: E402
from anthropic import AsyncAnthropic  # noqa: E402
from anthropic.lib.environments import EnvironmentWorker  # noqa: E402

WORKDIR = "/workspace"


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()


async def _egress_relay(socket_path: str, port: int) -> asyncio.AbstractServer:
    """127.0.0.1:port -> the egress proxy's unix socket (HTTP(S)_PROXY point here)."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_unix_connection(socket_path)
        except OSError:
            writer.close()
            return
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))

    return await asyncio.start_server(handle, "127.0.0.1", port)


async def main() -> int:
    # Read once, then out of the environment: bash subprocesses must not inherit the secret
    # (the SDK scrubs ANTHROPIC_* from them as well).
    secret = os.environ.pop("ANTHROPIC_WORK_SECRET", None)
    base_url = os.environ["ANTHROPIC_BASE_URL"]
    api_socket = os.environ.pop("MAS_API_SOCKET")
    max_idle = float(os.environ.get("MAS_MAX_IDLE", "60"))
    egress = os.environ.get("MAS_EGRESS_SOCKET")
    relay = await _egress_relay(egress, int(os.environ["MAS_EGRESS_PORT"])) if egress else None
    transport = httpx2.AsyncHTTPTransport(uds=api_socket)
    # trust_env=False: the mas API is reached through its socket, never through the egress proxy.
    http = httpx2.AsyncClient(transport=transport, trust_env=False, timeout=httpx2.Timeout(600, connect=10))
    try:
        async with AsyncAnthropic(
            base_url=base_url, api_key=None, auth_token=None, http_client=http
        ) as client:
            worker = EnvironmentWorker(client, workdir=WORKDIR, max_idle=max_idle)
            await worker.handle_item(work_secret=secret)
    finally:
        if relay is not None:
            relay.close()
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        sys.exit(asyncio.run(main()))
    except Exception:
        logging.getLogger("mas.dispatch").exception("the work item failed")
        sys.exit(1)
