"""`python3 /opt/mas/egress --config FILE --socket PATH [--secrets FILE --upstream-ca FILE]`:
serve one session's egress proxy."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from pathlib import Path

# The package by name (egress.*), and no module of it shadowing the standard library.
sys.path[0] = str(Path(__file__).resolve().parent.parent)

from egress.messages import MAX_HEAD  # noqa: E402
from egress.minter import Minter  # noqa: E402
from egress.policy import Policy  # noqa: E402
from egress.proxy import EgressProxy  # noqa: E402
from egress.substitution import SecretsFile  # noqa: E402


async def serve(proxy: EgressProxy, socket_path: Path) -> None:
    server = await asyncio.start_unix_server(proxy.handle, str(socket_path), limit=MAX_HEAD)
    os.chmod(socket_path, 0o666)  # the sandbox's tool server runs as another user
    logging.getLogger("mas.egress").info("listening on %s", socket_path)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(prog="mas-egress")
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--socket", type=Path, required=True)
    parser.add_argument("--secrets", type=Path, help="vault secrets to substitute (read again when changed)")
    parser.add_argument("--upstream-ca", type=Path, help="CA bundle for upstream TLS of substituting tunnels")
    parser.add_argument("--site", help="where the bundled cryptography is (for minting certificates)")
    args = parser.parse_args()
    if args.site:
        sys.path.append(args.site)  # after the standard library: nothing there is shadowed
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stdout)
    args.socket.unlink(missing_ok=True)  # left by the previous run of a restarted container
    minter = Minter(args.secrets.with_name("intermediate.pem") if args.secrets and args.site else None)
    proxy = EgressProxy(Policy.load(args.config), SecretsFile(args.secrets), args.upstream_ca, minter)
    asyncio.run(serve(proxy, args.socket))


if __name__ == "__main__":
    main()
