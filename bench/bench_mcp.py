"""bench_mcp: an MCP tool call's round trip inside a turn, next to a direct call of the same tool.

A real MCP server (the `mcp` package's MCPServer, its own process) and `mas serve` (SQLite, the
offline model). A session whose agent declares the server (`always_allow`) is sent turns of one
`/tool mcp__bench__add {...}` each; the in-turn round trip is the time from the
`agent.mcp_tool_use` event to its `agent.mcp_tool_result` (server timestamps, 1 ms resolution):
it includes the loop's steps around the call (recording it in flight, the call, writing the
result). The baseline is the same tool called with the `mcp` client library on a live connection
from this process, as many times, interleaved with the turns. Target: in-turn / direct <= 1.5.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from harness import (
    MasServer,
    api,
    checked,
    free_port,
    header,
    median,
    message,
    num,
    percentile,
)
from mcp import Client

ROOT = Path(__file__).resolve().parents[1]
TARGET = 1.5


@contextlib.contextmanager
def mcp_server() -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "bench" / "mcp_server.py"), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
                break
            time.sleep(0.1)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def _session(http: httpx.Client, url: str) -> str:
    agent = checked(
        http.post(
            "/v1/agents",
            json={
                "name": "bench-mcp",
                "model": "claude-sonnet-4-6",
                "mcp_servers": [{"type": "url", "name": "bench", "url": url}],
                "tools": [
                    {
                        "type": "mcp_toolset",
                        "mcp_server_name": "bench",
                        "default_config": {"permission_policy": {"type": "always_allow"}},
                    }
                ],
            },
        )
    )
    environment = checked(http.post("/v1/environments", json={"name": "bench-mcp"}))
    return str(
        checked(http.post("/v1/sessions", json={"agent": agent["id"], "environment_id": environment["id"]}))[
            "id"
        ]
    )


def _turn(http: httpx.Client, session_id: str, n: int) -> float:
    """One turn with one MCP call; the call's round trip in ms, from the events' timestamps.

    The turn is followed on the session's event stream, as a client waits for it: polling the
    event list instead would make the server serialise the growing log every few milliseconds,
    on the same cores and event loop as the call being measured.
    """
    path = f"/v1/sessions/{session_id}/events"
    seen: dict[str, dict[str, Any]] = {}
    with http.stream("GET", path + "/stream") as stream:
        checked(http.post(path, json={"events": [message(f'/tool mcp__bench__add {{"a": {n}, "b": 1}}')]}))
        for line in stream.iter_lines():
            if not line.startswith("data:"):
                continue
            event = json.loads(line[len("data:") :])
            seen.setdefault(str(event.get("type")), event)
            if event.get("type") == "session.status_idle":
                break
    use, result = seen.get("agent.mcp_tool_use"), seen.get("agent.mcp_tool_result")
    if use is None or result is None or result["is_error"] or result["content"][0]["text"] != str(n + 1):
        raise RuntimeError(f"unexpected turn: {sorted(seen)} {result}")
    start, end = (datetime.fromisoformat(e["processed_at"]) for e in (use, result))
    return (end - start).total_seconds() * 1000


async def _direct(url: str, calls: int) -> list[float]:
    samples = []
    async with Client(url) as client:
        await client.call_tool("add", {"a": 0, "b": 1})  # warm
        for n in range(calls):
            start = time.perf_counter()
            result = await client.call_tool("add", {"a": n, "b": 1})
            samples.append((time.perf_counter() - start) * 1000)
            assert not result.is_error
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(header("bench_mcp: MCP tool round trip in a turn vs a direct mcp client call"), flush=True)
    in_turn: list[float] = []
    direct: list[float] = []
    with tempfile.TemporaryDirectory() as tmp, mcp_server() as url:
        database = f"sqlite+aiosqlite:///{tmp}/mas.db"
        with MasServer(Path(tmp) / "mas", database) as mas, api(mas.url) as http:
            session_id = _session(http, url)
            _turn(http, session_id, 0)  # connects and lists the tools
            per_round = max(1, args.calls // args.rounds)
            for round_ in range(args.rounds):  # interleaved, so a busy spell hits both
                in_turn += [_turn(http, session_id, round_ * per_round + i) for i in range(per_round)]
                direct += asyncio.run(_direct(url, per_round))
    ratio = median(in_turn) / median(direct)
    print("| measure | median ms | p90 ms | samples |")
    print("| --- | --- | --- | --- |")
    for label, values in (
        ("in a turn (agent.mcp_tool_use -> agent.mcp_tool_result)", in_turn),
        ("direct (`mcp` Client.call_tool, live connection)", direct),
    ):
        print(f"| {label} | {num(median(values))} | {num(percentile(values, 90))} | {len(values)} |")
    verdict = "met" if ratio <= TARGET else "MISSED"
    print(f"\nratio in-turn / direct (medians): {num(ratio)}x (target <= {TARGET}x: {verdict})")


if __name__ == "__main__":
    main()
