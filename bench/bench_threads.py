"""A coordinator fanning out to threads vs independent sessions, through the public surface only.

Each round runs, one after the other (alternating which goes first):
* **threads**: one session whose coordinator delegates 10 tasks at once (`/delegate` lines of the
  offline model), each thread running one bash call in the session's shared sandbox, each reply
  going back to the coordinator, until the session is idle;
* **sessions**: 10 independent sessions, each sent the same one-bash-call task at once, until all
  are idle — the baseline: the same tool work without orchestration.

Reported: wall time from sending to idle (client clock), and from the first event to the last
tool result (server timestamps), median over rounds, and the ratio threads / sessions.

    python bench/bench_threads.py [--threads 10] [--rounds 5] [--json FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from harness import HEADERS, MasServer, dump_json, header, load_average, median, message, num, spread

TOOLSET = {"type": "agent_toolset_20260401"}
TIMEOUT = 600.0


def ts(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def bash(n: int) -> str:
    return "/tool bash " + json.dumps({"command": f"echo task-{n}"})


async def log(http: httpx.AsyncClient, path: str) -> list[dict[str, Any]]:
    response = await http.get(path, params={"limit": 1000})
    response.raise_for_status()
    data: list[dict[str, Any]] = response.json()["data"]
    return data


async def wait_idle(http: httpx.AsyncClient, session_id: str) -> list[dict[str, Any]]:
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        events = await log(http, f"/v1/sessions/{session_id}/events")
        if any(e["type"] == "session.status_idle" for e in events):
            return events
        await asyncio.sleep(0.05)
    raise TimeoutError(f"session {session_id} did not go idle")


async def create(http: httpx.AsyncClient, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = await http.post(path, json=body)
    response.raise_for_status()
    created: dict[str, Any] = response.json()
    return created


async def tool_results(http: httpx.AsyncClient, session_id: str) -> list[dict[str, Any]]:
    threads = (await http.get(f"/v1/sessions/{session_id}/threads")).json()["data"]
    found = []
    for thread in threads[1:]:
        events = await log(http, f"/v1/sessions/{session_id}/threads/{thread['id']}/events")
        found += [e for e in events if e["type"] == "agent.tool_result"]
    return found


async def threads_round(http: httpx.AsyncClient, coordinator: str, env: str, count: int) -> dict[str, float]:
    session = await create(http, "/v1/sessions", {"agent": coordinator, "environment_id": env})
    prompt = "\n".join(f"/delegate worker {bash(n)}" for n in range(count))
    started = time.monotonic()
    await create(http, f"/v1/sessions/{session['id']}/events", {"events": [message(prompt)]})
    events = await wait_idle(http, session["id"])
    wall = time.monotonic() - started
    results = await tool_results(http, session["id"])
    assert len(results) == count, f"{len(results)} of {count} thread tool results"
    first = ts(events[0]["processed_at"])
    return {"wall": wall, "to_last_result": max(ts(r["processed_at"]) for r in results) - first}


async def sessions_round(http: httpx.AsyncClient, worker: str, env: str, count: int) -> dict[str, float]:
    ids = [
        (await create(http, "/v1/sessions", {"agent": worker, "environment_id": env}))["id"]
        for _ in range(count)
    ]
    started = time.monotonic()
    await asyncio.gather(
        *(
            create(http, f"/v1/sessions/{sid}/events", {"events": [message(bash(n))]})
            for n, sid in enumerate(ids)
        )
    )
    logs = await asyncio.gather(*(wait_idle(http, sid) for sid in ids))
    wall = time.monotonic() - started
    first = min(ts(events[0]["processed_at"]) for events in logs)
    last = max(ts(e["processed_at"]) for events in logs for e in events if e["type"] == "agent.tool_result")
    return {"wall": wall, "to_last_result": last - first}


async def run(url: str, count: int, rounds: int) -> dict[str, list[dict[str, float]]]:
    async with httpx.AsyncClient(base_url=url, headers=HEADERS, timeout=120) as http:
        worker = await create(
            http, "/v1/agents", {"name": "worker", "model": "claude-sonnet-4-6", "tools": [TOOLSET]}
        )
        coordinator = await create(
            http,
            "/v1/agents",
            {
                "name": "lead",
                "model": "claude-sonnet-4-6",
                "tools": [TOOLSET],
                "multiagent": {"type": "coordinator", "agents": [worker["id"]]},
            },
        )
        env = await create(http, "/v1/environments", {"name": "bench-threads"})
        out: dict[str, list[dict[str, float]]] = {"threads": [], "sessions": []}
        for i in range(rounds):
            order = ["threads", "sessions"] if i % 2 == 0 else ["sessions", "threads"]
            for kind in order:
                if kind == "threads":
                    out[kind].append(await threads_round(http, coordinator["id"], env["id"], count))
                else:
                    out[kind].append(await sessions_round(http, worker["id"], env["id"], count))
        return out


def report(results: dict[str, list[dict[str, float]]], count: int, rounds: int) -> str:
    def values(kind: str, key: str) -> list[float]:
        return [r[key] for r in results[kind]]

    lines = [
        header("bench_threads: a coordinator with threads vs independent sessions"),
        f"{count} tasks of one bash call (`echo`), {rounds} rounds, SQLite, local sandbox, offline model, "
        f"load {load_average():.1f}",
        "",
        "| | wall: send → idle (s) | first event → last tool result (s) |",
        "| --- | --- | --- |",
    ]
    for kind, name in (("threads", f"1 coordinator, {count} threads"), ("sessions", f"{count} sessions")):
        wall, last = values(kind, "wall"), values(kind, "to_last_result")
        walls, lasts = f"{num(median(wall))} ({spread(wall)})", f"{num(median(last))} ({spread(last)})"
        lines.append(f"| {name} | {walls} | {lasts} |")
    ratio = median(values("threads", "wall")) / median(values("sessions", "wall"))
    tools = median(values("threads", "to_last_result")) / median(values("sessions", "to_last_result"))
    lines += ["", f"threads / sessions, wall (median): {ratio:.2f}x; to the last tool result: {tools:.2f}x"]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threads", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mas-bench-threads-") as tmp:
        workdir = Path(tmp)
        server = MasServer(workdir, f"sqlite+aiosqlite:///{workdir}/mas.db")
        server.start()
        try:
            results = asyncio.run(run(server.url, args.threads, args.rounds))
        finally:
            server.stop()
    print(report(results, args.threads, args.rounds))
    dump_json(args.json, results)


if __name__ == "__main__":
    main()
