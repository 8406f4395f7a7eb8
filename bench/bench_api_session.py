"""What the API side of one session costs: server CPU per create, per stream open, per replayed turn.

    .venv/bin/python bench/bench_api_session.py [--requests 200] [--turns 20] [--profile DIR]

Every client of a session does the same three things (bench_concurrency's client): POST
/v1/sessions with one `user.message`, GET its event stream, read ~10 frames until
`session.status_idle`. Here they are measured apart, each one request at a time (so the figure is
the server's CPU, not a queue), on a `mas serve` without its worker (SQLite): a create leaves its
session queued, and nothing but these requests runs in the server.

* `create`: POST /v1/sessions with one `user.message` (what bench_concurrency sends).
* `open`: GET the stream of a queued session, read its headers, leave (nothing to send).
* `replay`: GET the stream of a finished one-tool turn with `Last-Event-ID` = its first event, read
  the ~10 frames up to `session.status_idle`, leave: `open` plus the frames.
* `health`: GET /health, the floor of one request through uvicorn and the middleware.

The finished turns come from a first server with its worker, on the same database file.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import httpx
from harness import (
    HEADERS,
    MasServer,
    agent_body,
    checked,
    cpu_seconds,
    environment_body,
    git_commit,
    header,
    load_average,
    message,
)
from profiling import Profiler

TOOL_TEXT = 'Run a quick check.\n/tool bash {"command": "echo hi"}'


def session_body(agent: str, environment: str) -> dict[str, Any]:
    return {"agent": agent, "environment_id": environment, "initial_events": [message(TOOL_TEXT)]}


async def create(client: httpx.AsyncClient, agent: str, environment: str) -> str:
    return str(checked(await client.post("/v1/sessions", json=session_body(agent, environment)))["id"])


async def read_turn(client: httpx.AsyncClient, session_id: str, after: str | None = None) -> int:
    """Frames up to `session.status_idle` (from ``after``, else by the replay rule)."""
    headers = {"last-event-id": after} if after else {}
    frames = 0
    async with client.stream("GET", f"/v1/sessions/{session_id}/events/stream", headers=headers) as response:
        async for line in response.aiter_lines():
            if line.startswith("event:"):
                frames += 1
                if "session.status_idle" in line:
                    return frames
    raise RuntimeError(f"the stream of {session_id} ended before session.status_idle")


async def open_and_leave(client: httpx.AsyncClient, session_id: str) -> None:
    async with client.stream("GET", f"/v1/sessions/{session_id}/events/stream") as response:
        if response.status_code != 200:
            raise RuntimeError(f"stream of {session_id}: {response.status_code}")


def client(url: str, headers: dict[str, str] | None = HEADERS) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=url, headers=headers, timeout=120)


def finished_turns(workdir: Path, database: str, turns: int) -> tuple[str, str, dict[str, str]]:
    """An agent, an environment, and ``turns`` finished one-tool sessions with their first event."""
    with MasServer(workdir, database, label="with-worker") as server:

        async def run() -> tuple[str, str, dict[str, str]]:
            async with client(server.url) as http:
                agent = checked(await http.post("/v1/agents", json=agent_body()))["id"]
                environment = checked(await http.post("/v1/environments", json=environment_body()))["id"]
                firsts = {}
                for _ in range(turns):
                    session_id = await create(http, agent, environment)
                    await read_turn(http, session_id)
                    page = checked(await http.get(f"/v1/sessions/{session_id}/events", params={"limit": 1}))
                    firsts[session_id] = page["data"][0]["id"]
                return agent, environment, firsts

        return asyncio.run(run())


def measured(pid: int, count: int, work: Callable[[], Coroutine[Any, Any, None]]) -> float:
    """Server CPU per unit of ``work()`` (``count`` units), in ms."""
    before = cpu_seconds(pid)
    asyncio.run(work())
    return (cpu_seconds(pid) - before) / count * 1000


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=200, help="creates, opens and health checks")
    parser.add_argument("--turns", type=int, default=20, help="finished turns, each replayed 10 times")
    parser.add_argument("--profile", type=Path, help="py-spy profiles of each phase into this dir")
    args = parser.parse_args()
    print(header("bench_api_session: the API side of a session, one request at a time"), flush=True)
    n = args.requests
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        database = f"sqlite+aiosqlite:///{workdir / 'bench.db'}"
        agent, environment, firsts = finished_turns(workdir, database, args.turns)
        load = load_average()
        with MasServer(workdir, database, env={"MAS_EMBEDDED_WORKER": "false"}, label="api") as server:
            profiler = Profiler(args.profile, server.pid)
            url, pid = server.url, server.pid
            created: list[str] = []

            async def warm_up() -> None:
                async with client(url) as http:
                    session_id = await create(http, agent, environment)
                    await open_and_leave(http, session_id)
                    first = next(iter(firsts))
                    await read_turn(http, first, firsts[first])

            async def creates() -> None:
                async with client(url) as http:
                    created.extend([await create(http, agent, environment) for _ in range(n)])

            async def opens() -> None:
                async with client(url) as http:
                    for session_id in created:
                        await open_and_leave(http, session_id)

            frames: list[int] = []

            async def replays() -> None:
                async with client(url) as http:
                    for _ in range(10):
                        frames.extend([await read_turn(http, s, first) for s, first in firsts.items()])

            async def health() -> None:
                async with client(url, None) as http:
                    for _ in range(n):
                        (await http.get("/health")).raise_for_status()

            asyncio.run(warm_up())
            figures = {}
            started = time.perf_counter()
            for name, count, work in (
                ("create", n, creates),
                ("open", n, opens),
                ("replay", 10 * len(firsts), replays),
                ("health", n, health),
            ):
                with profiler.phase(name):
                    figures[name] = measured(pid, count, work)
            elapsed = time.perf_counter() - started
        load_after = load_average()
    print(f"commit {git_commit()}, load average {load:.1f} -> {load_after:.1f}, {elapsed:.0f} s\n")
    print("| request | server CPU per request (ms) | over GET /health |")
    print("|---|---|---|")
    for name, label in (
        ("create", "POST /v1/sessions (one user.message)"),
        ("open", "GET .../events/stream, nothing to send"),
        ("replay", f"GET .../events/stream, a turn of {max(frames, default=0)} frames replayed"),
        ("health", "GET /health"),
    ):
        print(f"| {label} | {figures[name]:.2f} | {figures[name] / figures['health']:.1f}x |")
    per_session = figures["create"] + figures["replay"]
    print(f"\nthe API side of one session (create + a turn's stream): {per_session:.1f} ms")
    if args.profile is not None:
        print("\n" + profiler.summary())
    sys.stdout.flush()


if __name__ == "__main__":
    main()
