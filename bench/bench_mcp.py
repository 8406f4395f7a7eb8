"""bench_mcp: an MCP tool call's round trip inside a turn, next to a direct call of the same tool.

A real MCP server (the `mcp` package's MCPServer, its own process) and `mas serve` (SQLite, the
offline model). A session whose agent declares the server (`always_allow`) is sent turns of one
`/tool mcp__bench__add {...}` each, each turn followed on the session's event stream; the in-turn
round trip is the time from the `agent.mcp_tool_use` event to its `agent.mcp_tool_result`
(server timestamps, 1 ms resolution). Both timestamps are taken inside their transactions, so it
spans: committing the response that holds the call (the call is recorded as started in that same
transaction, so a crash never sends it twice), the call on the session's live connection, and
the result's transaction up to writing the result.

Baselines, from this process, interleaved call by call with the turns in a rotating order (so a
busy spell hits all three, and none always runs while the server finishes a turn):
- direct: the same tool called with the `mcp` client library on a live connection. The issue's
  target is measured against this one: in-turn / direct <= 1.5.
- journalled: the direct call as a crash-safe caller must make it, the least the loop can do:
  the call written and committed to a SQLite log before it is sent, the result written in a
  second transaction after (WAL, synchronous=NORMAL, BEGIN IMMEDIATE, as mas's SQLite), timed
  from the first write to the second, as the events' timestamps are. The in-turn / journalled
  ratio is the loop's own cost over that floor (the ORM, the lease fence, the event encoding).
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sqlite3
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


async def _direct(client: Client, n: int) -> float:
    start = time.perf_counter()
    result = await client.call_tool("add", {"a": n, "b": 1})
    elapsed = (time.perf_counter() - start) * 1000
    assert not result.is_error
    return elapsed


async def _journalled(client: Client, journal: sqlite3.Connection, n: int) -> float:
    arguments = {"a": n, "b": 1}
    journal.execute("BEGIN IMMEDIATE")
    journal.execute("INSERT INTO log (body) VALUES (?)", (json.dumps({"use": arguments}),))
    start = time.perf_counter()
    journal.execute("COMMIT")
    result = await client.call_tool("add", arguments)
    journal.execute("BEGIN IMMEDIATE")
    journal.execute("INSERT INTO log (body) VALUES (?)", (json.dumps(result.model_dump(mode="json")),))
    elapsed = (time.perf_counter() - start) * 1000
    journal.execute("COMMIT")
    assert not result.is_error
    return elapsed


def _journal(path: Path) -> sqlite3.Connection:
    journal = sqlite3.connect(path, isolation_level=None)
    journal.execute("PRAGMA journal_mode=WAL")
    journal.execute("PRAGMA synchronous=NORMAL")
    journal.execute("CREATE TABLE IF NOT EXISTS log (seq INTEGER PRIMARY KEY, body TEXT NOT NULL)")
    return journal


async def _measure(
    http: httpx.Client, session_id: str, url: str, calls: int, journal: sqlite3.Connection
) -> dict[str, list[float]]:
    """Each call measured the three ways, in a rotating order (none always runs right after a
    turn, while the server finishes it)."""
    samples: dict[str, list[float]] = {"in_turn": [], "direct": [], "journalled": []}
    async with Client(url) as direct, Client(url) as journalled:
        await direct.call_tool("add", {"a": 0, "b": 1})  # warm
        await journalled.call_tool("add", {"a": 0, "b": 1})
        for n in range(calls):
            ways = ["in_turn", "direct", "journalled"]
            for way in ways[n % 3 :] + ways[: n % 3]:
                if way == "in_turn":
                    sample = await asyncio.to_thread(_turn, http, session_id, n)
                elif way == "direct":
                    sample = await _direct(direct, n)
                else:
                    sample = await _journalled(journalled, journal, n)
                samples[way].append(sample)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=30)
    args = parser.parse_args()
    print(header("bench_mcp: MCP tool round trip in a turn vs a direct mcp client call"), flush=True)
    with tempfile.TemporaryDirectory() as tmp, mcp_server() as url:
        database = f"sqlite+aiosqlite:///{tmp}/mas.db"
        with MasServer(Path(tmp) / "mas", database) as mas, api(mas.url) as http:
            session_id = _session(http, url)
            _turn(http, session_id, 0)  # connects and lists the tools
            journal = _journal(Path(tmp) / "journal.db")
            try:
                samples = asyncio.run(_measure(http, session_id, url, args.calls, journal))
            finally:
                journal.close()
    in_turn, direct, journalled = samples["in_turn"], samples["direct"], samples["journalled"]
    ratio = median(in_turn) / median(direct)
    print("| measure | median ms | p90 ms | samples |")
    print("| --- | --- | --- | --- |")
    for label, values in (
        ("in a turn (agent.mcp_tool_use -> agent.mcp_tool_result)", in_turn),
        ("direct (`mcp` Client.call_tool, live connection)", direct),
        ("journalled direct call (committed before, result written after)", journalled),
    ):
        print(f"| {label} | {num(median(values))} | {num(percentile(values, 90))} | {len(values)} |")
    verdict = "met" if ratio <= TARGET else "MISSED"
    print(f"\nratio in-turn / direct (medians): {num(ratio)}x (target <= {TARGET}x: {verdict})")
    print(f"ratio in-turn / journalled (medians): {num(median(in_turn) / median(journalled))}x")


if __name__ == "__main__":
    main()
