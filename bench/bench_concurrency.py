"""Many sessions at once: 100 concurrent one-tool sessions, local sandbox, wall time.

    .venv/bin/python bench/bench_concurrency.py [--sessions 100] [--repeats 3] [--topologies ...]

Each session is created with one `user.message` that makes the offline model call `bash` once
(`echo hi`, run by the local sandbox: one tool-server process per session), then answer; the
client follows each session's stream until `session.status_idle` (end_turn), all at once
(asyncio + httpx, one connection per session). Wall time runs from the first create to the last
idle. The baseline, in the same run and server, is one such session alone.

Topologies (a fresh server and database for every repeat):
* `serve-c8`: `mas serve`, SQLite, embedded worker, MAS_WORKER_CONCURRENCY=8 (today's default);
* `serve-c32`: the same with MAS_WORKER_CONCURRENCY=32;
* `pg-api+2workers`: PostgreSQL, `mas serve` without its worker plus two `mas worker` processes
  (concurrency 8 each), the docker-compose deployment spread over this machine's two cores;
  `pg-api+Nworkers` for another number of workers (`pg-serve` is `mas serve` alone on PostgreSQL);
* `api+Nworkers`: the same split on SQLite (the processes tell each other what they commit
  through unix datagram sockets next to the database, `app/events/sqlite_channel.py`).
Target (issue 10, with the documented topology): 100 sessions <= 3 s wall.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from harness import (
    CLK_TCK,
    HEADERS,
    ROOT,
    MasServer,
    agent_body,
    api,
    checked,
    cpu_seconds,
    dump_json,
    environment_body,
    header,
    load_average,
    mas_command,
    median,
    message,
    postgres_admin_url,
    postgres_database,
    spread,
)
from profiling import Profiler, summarise

TOOL_TEXT = 'Run a quick check.\n/tool bash {"command": "echo hi"}'
TARGET_S = 3.0
RUN_TIMEOUT_S = 600.0
TOPOLOGIES = ("serve-c8", "serve-c32", "pg-api+2workers")


@dataclass
class Outcome:
    wall_s: float
    single_s: float
    per_session_p50_s: float
    per_session_max_s: float
    cpu_s: float  # the mas processes (server, workers) themselves
    load: float
    children_cpu_s: float = 0.0  # processes they waited for (the tool servers' launchers)
    tool_servers_cpu_s: float = 0.0  # the local sandbox's tool servers (detached)
    cpu_by_process_s: list[float] = field(default_factory=list)  # the API server first


@dataclass
class Topology:
    name: str
    outcomes: list[Outcome] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


async def one_session(client: httpx.AsyncClient, agent_id: str, env_id: str) -> float:
    start = time.perf_counter()
    body = {"agent": agent_id, "environment_id": env_id, "initial_events": [message(TOOL_TEXT)]}
    created = await client.post("/v1/sessions", json=body)
    session_id = checked(created)["id"]
    saw_result, event = False, ""
    async with client.stream("GET", f"/v1/sessions/{session_id}/events/stream") as response:
        async for line in response.aiter_lines():
            if line.startswith("event:"):
                event = line[6:].strip()
                saw_result = saw_result or event == "agent.tool_result"
            elif line.startswith("data:") and event == "session.status_idle":
                stop = json.loads(line[5:]).get("stop_reason", {}).get("type")
                if stop != "end_turn" or not saw_result:
                    raise RuntimeError(
                        f"session {session_id} ended with {stop}, tool result seen: {saw_result}"
                    )
                return time.perf_counter() - start
            elif event == "session.error":
                raise RuntimeError(f"session {session_id}: {line}")
    raise RuntimeError(f"session {session_id}: stream closed before idle")


async def many_sessions(base_url: str, agent_id: str, env_id: str, count: int) -> tuple[float, list[float]]:
    limits = httpx.Limits(max_connections=count + 10, max_keepalive_connections=count + 10)
    timeout = httpx.Timeout(RUN_TIMEOUT_S, connect=30)
    async with httpx.AsyncClient(
        base_url=base_url, headers=HEADERS, limits=limits, timeout=timeout
    ) as client:
        start = time.perf_counter()
        each = await asyncio.wait_for(
            asyncio.gather(*(one_session(client, agent_id, env_id) for _ in range(count))), RUN_TIMEOUT_S
        )
        return time.perf_counter() - start, list(each)


def wait_started(log: Path, procs: list[subprocess.Popen[bytes]], timeout: float = 180.0) -> None:
    """Until every worker has said it claims (its start takes tens of seconds on a busy machine)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = log.read_text(errors="replace")
        if any(p.poll() is not None for p in procs):
            raise RuntimeError(f"mas worker exited: {text[-3000:]}")
        if len(re.findall(r"worker \S+ started", text)) >= len(procs):
            return
        time.sleep(0.2)
    raise RuntimeError(f"mas workers not started after {timeout:.0f} s")


@contextlib.contextmanager
def workers(server: MasServer, count: int) -> Iterator[list[int]]:
    """`mas worker` processes beside a worker-less `mas serve` (each runs the offline model itself)."""
    env = server.environment()
    env.update({"MAS_EMBEDDED_WORKER": "true", "MAS_LOG_LEVEL": "info"})  # to see them start
    procs = []
    with (server.workdir / "workers.log").open("ab") as log:
        for _ in range(count):
            procs.append(
                subprocess.Popen(
                    [*mas_command(), "worker"],
                    cwd=server.workdir,
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
    try:
        wait_started(server.workdir / "workers.log", procs)
        yield [p.pid for p in procs]
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()


def _stat(pid: int) -> list[str]:
    with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
        return handle.read().rsplit(")", 1)[1].split()


def children_cpu_seconds(pid: int) -> float:
    """CPU of a process's children: those it has waited for (cutime + cstime) and those still
    running with what they have waited for (the local sandbox's launchers or its zygote)."""
    fields = _stat(pid)
    total = int(fields[13]) + int(fields[14])
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError):
                child = _stat(int(entry.name))
                if child[1] == str(pid):
                    total += sum(int(f) for f in child[11:15])
    return total / CLK_TCK


def tool_servers_cpu_seconds(workdir: Path) -> float:
    """Every process in the sessions of the local sandbox's tool servers (each server detaches
    into a session of its own; its shell and commands stay in it), with the children they reaped."""
    sessions = set()
    for pid_file in (workdir / "sandbox").glob("local/*/*/server.pid"):
        with contextlib.suppress(OSError, ValueError):
            sessions.add(_stat(int(pid_file.read_text()))[3])
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError):
            fields = _stat(int(entry.name))
            if fields[3] in sessions:
                total += sum(int(f) for f in fields[11:15])
    return total / CLK_TCK


def worker_count(topology: str) -> int:
    """`pg-api+3workers`, `api+3workers` -> 3 (`mas worker` processes beside a worker-less `mas serve`)."""
    match = re.fullmatch(r"(pg-)?api\+(\d+)workers?", topology)
    if match is None:
        raise SystemExit(f"unknown topology {topology!r}")
    return int(match[2])


def run_once(
    url: str, workdir: Path, topology: str, sessions: int, profiler_dir: Path | None = None
) -> Outcome:
    env = {"MAS_WORKER_CONCURRENCY": "32" if topology == "serve-c32" else "8"}
    separate = topology.startswith(("pg-api", "api+"))
    if separate:
        env["MAS_EMBEDDED_WORKER"] = "false"
    with MasServer(workdir, url, env=env, label=topology) as server, contextlib.ExitStack() as stack:
        pids = [server.pid]
        if separate:
            pids += stack.enter_context(workers(server, worker_count(topology)))
        with api(server.url) as http:
            agent = checked(http.post("/v1/agents", json=agent_body()))
            env_id = checked(http.post("/v1/environments", json=environment_body()))["id"]
        # Unmeasured: a `mas worker` may still be starting (tens of seconds on a busy machine),
        # and the first session of a process pays for its imports and its sandbox zygote.
        asyncio.run(many_sessions(server.url, agent["id"], env_id, 1))
        single, _ = asyncio.run(many_sessions(server.url, agent["id"], env_id, 1))
        before, load = [cpu_seconds(p) for p in pids], load_average()
        children = sum(children_cpu_seconds(p) for p in pids)
        tools = tool_servers_cpu_seconds(workdir)
        with contextlib.ExitStack() as profiles:  # every mas process, the API server first
            for i, pid in enumerate(pids):
                name = f"{topology}-{sessions}" + (f"-worker{i}" if i else "")
                profiles.enter_context(Profiler(profiler_dir, pid).phase(name))
            wall, each = asyncio.run(many_sessions(server.url, agent["id"], env_id, sessions))
        by_process = [cpu_seconds(p) - b for p, b in zip(pids, before, strict=True)]
        children = sum(children_cpu_seconds(p) for p in pids) - children
        tools = tool_servers_cpu_seconds(workdir) - tools
    return Outcome(
        wall, single, median(each), max(each), sum(by_process), load, children, tools, by_process
    )


def report(results: list[Topology], sessions: int) -> str:
    lines = [
        f"{sessions} concurrent one-tool sessions (local sandbox); medians of repeats [min-max]",
        "",
        "| topology | wall (s) | one session alone (s) | wall / one session | per-session p50 / max (s) "
        "| server CPU (s) | CPU per session (ms) | + launchers, tool servers per session (ms) "
        "| load average | target ≤ 3 s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    failures = [f"{t.name} {failure}" for t in results for failure in t.failures]
    for topo in results:
        if not topo.outcomes:
            lines.append(f"| {topo.name} | every run failed | | | | | | | | |")
            continue
        walls = [o.wall_s for o in topo.outcomes]
        wall, single = median(walls), median([o.single_s for o in topo.outcomes])
        cpu = median([o.cpu_s for o in topo.outcomes])
        lines.append(
            f"| {topo.name} | {wall:.2f} [{spread(walls)}] | {single:.3f} | {wall / single:.0f}x "
            f"| {median([o.per_session_p50_s for o in topo.outcomes]):.2f} / "
            f"{median([o.per_session_max_s for o in topo.outcomes]):.2f} "
            f"| {cpu:.1f} | {cpu / sessions * 1000:.0f}{_split(topo.outcomes, sessions)} "
            f"| {median([o.children_cpu_s for o in topo.outcomes]) / sessions * 1000:.0f}, "
            f"{median([o.tool_servers_cpu_s for o in topo.outcomes]) / sessions * 1000:.0f} "
            f"| {spread([o.load for o in topo.outcomes])} "
            f"| {'met' if wall <= TARGET_S else 'MISSED'} |"
        )
    if failures:
        lines += ["", "failed runs:", *(f"- {f}" for f in failures)]
    by_name = {t.name: median([o.wall_s for o in t.outcomes]) for t in results if t.outcomes}
    if "serve-c8" in by_name and "serve-c32" in by_name:
        lines += [
            "",
            f"MAS_WORKER_CONCURRENCY 32 vs 8: "
            f"{by_name['serve-c32'] / by_name['serve-c8']:.2f}x the wall time",
        ]
    return "\n".join(lines)


def _split(outcomes: list[Outcome], sessions: int) -> str:
    """` (API 12 + 30)`: the CPU per session of each process, when there are several."""
    counts = {len(o.cpu_by_process_s) for o in outcomes}
    if counts != {max(counts)} or max(counts) < 2:
        return ""
    each = [median([o.cpu_by_process_s[i] for o in outcomes]) for i in range(max(counts))]
    return f" (API {each[0] / sessions * 1000:.0f} + " + " + ".join(
        f"{c / sessions * 1000:.0f}" for c in each[1:]
    ) + ")"


def run_topology(workdir: Path, topology: str, sessions: int, profile: Path | None) -> Outcome:
    if topology.startswith("pg-"):
        with postgres_database(postgres_admin_url()) as url:
            return run_once(url, workdir, topology, sessions, profile)
    workdir.mkdir(parents=True)
    return run_once(f"sqlite+aiosqlite:///{workdir / 'bench.db'}", workdir, topology, sessions, profile)


def keep_logs(workdir: Path) -> Path:
    """The server and worker logs of a failed run, out of the temporary directory."""
    kept = ROOT / ".build" / "bench-failures" / f"{workdir.name}-{int(time.time())}"
    kept.mkdir(parents=True, exist_ok=True)
    for log in workdir.glob("*.log"):
        shutil.copy(log, kept / log.name)
    return kept


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sessions", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--topologies", default=",".join(TOPOLOGIES))
    parser.add_argument("--json", type=Path, help="also write the raw figures here")
    parser.add_argument(
        "--profile", type=Path, help="py-spy profiles of the mas processes (first repeat) into this dir"
    )
    args = parser.parse_args()
    print(header("bench_concurrency: concurrent one-tool sessions"), flush=True)
    results = [Topology(name) for name in args.topologies.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        for repeat in range(args.repeats):
            for topo in results:  # interleaved, so a busy spell on the machine hits all alike
                profile = args.profile if repeat == 0 else None
                print(f"{topo.name}: repeat {repeat + 1}/{args.repeats}", file=sys.stderr, flush=True)
                workdir = Path(tmp) / f"{topo.name}-{repeat}"
                try:
                    outcome = run_topology(workdir, topo.name, args.sessions, profile)
                except Exception as exc:  # a failed run is a finding: keep its logs, go on
                    topo.failures.append(f"repeat {repeat + 1}: {type(exc).__name__}: {exc}"[:300])
                    kept = keep_logs(workdir)
                    print(f"  FAILED ({type(exc).__name__}); server logs kept in {kept}", file=sys.stderr)
                    continue
                topo.outcomes.append(outcome)
                print(f"  {outcome}", file=sys.stderr, flush=True)
    print(report(results, args.sessions))
    if args.profile is not None:
        for path in sorted(args.profile.glob("*.txt")):
            print("\n" + summarise(path))
    dump_json(args.json, {t.name: [o.__dict__ for o in t.outcomes] for t in results})


if __name__ == "__main__":
    main()
