"""What substituting a vault secret costs the egress proxy, per HTTPS request.

The proxy (sandbox/egress/, the same code the proxy container runs) serves a unix socket from an
event loop in a thread of its own, so its CPU time (``time.thread_time`` in that thread) is
counted apart from the client's and the upstream's. Each request is a new connection (as through
the proxy in a sandbox: one request per connection): CONNECT, TLS, a POST with the placeholder
in a header and the body, the upstream's answer. Variants, interleaved in rotating order:

- ``tunnel``: no secret applies, the TLS session passes through (the baseline: what every
  limited session pays);
- ``intercept``: the proxy terminates TLS with the host-minted leaf, substitutes, and opens a
  verified TLS connection upstream;
- ``minted``: the same with a leaf the proxy minted itself (cached after the first request);

plus the cost of minting one leaf. The upstream is an HTTPS server on loopback (where sandboxes
never go: this bench alone lets the proxy reach it).

    .venv/bin/python bench/bench_egress.py [--requests 200] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import http.server
import json
import os
import socket
import ssl
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import sandbox.egress.proxy as proxy_module
from app.sandbox.egress_ca import EgressAuthority
from sandbox.egress.minter import Minter
from sandbox.egress.policy import Policy
from sandbox.egress.substitution import SecretsFile

VARIANTS = ("tunnel", "intercept", "minted")


class _Upstream(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: Any) -> None:
        pass


def _upstream(directory: Path) -> tuple[int, Path]:
    authority = EgressAuthority(directory / "upstream", "upstream")
    (directory / "server.pem").write_bytes(authority.leaf(["localhost"]))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Upstream)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(directory / "server.pem"))
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server.server_address[1], authority.directory / "ca.pem"


class ProxyThread:
    """One proxy per variant, all on one event loop in one thread (its CPU is theirs alone)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, daemon=True).start()

    def serve(self, proxy: proxy_module.EgressProxy, path: Path) -> None:
        async def start() -> None:
            await asyncio.start_unix_server(proxy.handle, str(path))

        asyncio.run_coroutine_threadsafe(start(), self.loop).result()

    def cpu(self) -> float:
        return asyncio.run_coroutine_threadsafe(_thread_time(), self.loop).result()


async def _thread_time() -> float:
    return time.thread_time()


def _request(path: Path, port: int, trust: ssl.SSLContext, placeholder: str) -> None:
    with socket.socket(socket.AF_UNIX) as raw:
        raw.connect(str(path))
        raw.sendall(f"CONNECT localhost:{port} HTTP/1.1\r\nHost: localhost:{port}\r\n\r\n".encode())
        if not raw.recv(1000).startswith(b"HTTP/1.1 200"):
            raise RuntimeError("CONNECT refused")
        with trust.wrap_socket(raw, server_hostname="localhost") as tls:
            body = json.dumps({"key": placeholder}).encode()
            head = (
                f"POST /x HTTP/1.1\r\nHost: localhost:{port}\r\nAuthorization: Bearer {placeholder}\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
            )
            tls.sendall(head.encode() + body)
            reply = b""
            while chunk := tls.recv(65536):
                reply += chunk
    if not reply.startswith(b"HTTP/1.1 200"):
        raise RuntimeError(f"unexpected reply: {reply[:200]!r}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=200, help="requests per variant and round")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    proxy_module.forbidden_address = lambda value: False  # type: ignore[attr-defined]  # loopback upstream
    directory = Path(tempfile.mkdtemp(prefix="bench-egress-"))
    port, upstream_ca = _upstream(directory)
    authority = EgressAuthority(directory / "instance", "bench")
    placeholder = authority.placeholder("sesn_bench", "TOKEN")
    entry = {"placeholder": placeholder, "value": "s3cr3t", "hosts": None, "header": True, "body": True}
    configs: dict[str, tuple[list[dict[str, Any]], list[str]]] = {
        "tunnel": ([], []),
        "intercept": ([entry], ["localhost"]),
        "minted": ([entry], []),
    }
    thread = ProxyThread()
    sockets: dict[str, Path] = {}
    trust: dict[str, ssl.SSLContext] = {}
    for variant, (secrets, names) in configs.items():
        config = directory / variant
        config.mkdir()
        (config / "leaf.pem").write_bytes(authority.leaf(names) if names else b"")
        (config / "secrets.json").write_text(json.dumps({"secrets": secrets, "names": names}))
        (config / "intermediate.pem").write_bytes(authority.intermediate(None))
        proxy = proxy_module.EgressProxy(
            Policy.from_hosts([], any_host=True),
            SecretsFile(config / "secrets.json"),
            upstream_ca,
            Minter(config / "intermediate.pem"),
        )
        sockets[variant] = directory / f"{variant}.sock"
        thread.serve(proxy, sockets[variant])
        ca = upstream_ca if variant == "tunnel" else authority.directory / "ca.pem"
        trust[variant] = ssl.create_default_context(cafile=str(ca))
    print(f"load average before: {os.getloadavg()[0]:.1f}; {args.rounds} rounds x {args.requests} requests")
    cpu: dict[str, float] = dict.fromkeys(VARIANTS, 0.0)
    wall: dict[str, float] = dict.fromkeys(VARIANTS, 0.0)
    for variant in VARIANTS:  # warm-up: first mint, first handshakes
        _request(sockets[variant], port, trust[variant], placeholder)
    for round_ in range(args.rounds):
        order = VARIANTS[round_ % 3 :] + VARIANTS[: round_ % 3]
        for variant in order:
            started_cpu, started = thread.cpu(), time.perf_counter()
            for _ in range(args.requests):
                _request(sockets[variant], port, trust[variant], placeholder)
            wall[variant] += time.perf_counter() - started
            cpu[variant] += thread.cpu() - started_cpu
    total = args.rounds * args.requests
    mint_cpu = _mint_cost(directory / "minted" / "intermediate.pem")
    print(f"load average after: {os.getloadavg()[0]:.1f}")
    print("| variant | proxy CPU per request (ms) | ratio | wall per request (ms) | ratio |")
    print("| --- | --- | --- | --- | --- |")
    for variant in VARIANTS:
        c, w = cpu[variant] / total * 1000, wall[variant] / total * 1000
        base_c, base_w = cpu["tunnel"] / total * 1000, wall["tunnel"] / total * 1000
        print(f"| {variant} | {c:.2f} | {c / base_c:.2f}x | {w:.2f} | {w / base_w:.2f}x |")
    print(f"minting one leaf in the proxy: {mint_cpu:.2f} ms CPU")


def _mint_cost(intermediate: Path, count: int = 50) -> float:
    minter = Minter(intermediate)
    minter.context("warm.test")
    started = time.thread_time()
    for i in range(count):
        minter.context(f"host{i}.test")
    return (time.thread_time() - started) / count * 1000


if __name__ == "__main__":
    main()
