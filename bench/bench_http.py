"""Read throughput of mas next to a bare FastAPI app serving the same bytes, measured with wrk.

    .venv/bin/python bench/bench_http.py [--databases sqlite,postgres] [--duration 5] [--repeats 3]

Per database: one `mas serve` process (default topology: embedded worker, offline model, local
sandbox) with an agent, an environment, 50 sessions and one session with a ~1,000-event log built
through the API. The bodies of the four reads are captured from mas, then served unchanged by
`bare_server.py` (FastAPI, same uvicorn settings, one process). For each endpoint and for 1, 10
and 50 connections, wrk drives mas and bare alternately, `--repeats` times:

* GET an agent, GET an environment, list sessions (default page, 20 of 50),
* list a session's events (`limit=100`, the first 100 of the ~1,000-event log).

Printed: req/s (median of repeats, [min-max]), latency p50/p99 (medians), server CPU per request
(user + system time of the server process over the run / requests), and the ratios mas/bare.
Target (issue 10, one process): reads >= 0.3x bare.

Why wrk: a C load generator (Debian's `wrk`) costs the client little CPU, which matters on a
2-core machine where client and server share the cores; a Python generator would eat the CPU
the server needs. `scripts/bench.sh` installs it if missing.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from harness import (
    HEADERS,
    MasServer,
    agent_body,
    api,
    checked,
    cpu_seconds,
    dump_json,
    environment_body,
    free_port,
    header,
    load_average,
    median,
    postgres_admin_url,
    postgres_database,
    spread,
    wait_healthy,
)
from profiling import Profiler
from sessionlog import LoggedSession

CONCURRENCY = (1, 10, 50)
SESSIONS = 50
LOG_EVENTS = 1000
TARGET_RATIO = 0.3
PROFILE_SECONDS = 15
WRK_REPORT = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "WRKJSON {\\"requests\\": %d, \\"duration_us\\": %d, \\"socket_errors\\": %d, \\"status_errors\\": %d, "
    .. "\\"p50_us\\": %d, \\"p99_us\\": %d}\\n",
    summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout, e.status,
    latency:percentile(50), latency:percentile(99)))
end
"""


@dataclass(frozen=True)
class Endpoint:
    name: str
    path: str  # the route, with ids filled in
    query: str = ""

    @property
    def target(self) -> str:
        return self.path + (f"?{self.query}" if self.query else "")


@dataclass
class Run:
    rps: float
    p50_ms: float
    p99_ms: float
    cpu_us: float


@dataclass
class Cell:
    """All runs of one (database, endpoint, concurrency, server)."""

    runs: list[Run] = field(default_factory=list)

    def med(self, attr: str) -> float:
        return median([float(getattr(r, attr)) for r in self.runs])


# -- fixtures ----------------------------------------------------------------------------------------


def populate(base_url: str) -> list[Endpoint]:
    """The data the reads return, made through the API as a user would."""
    with api(base_url) as http:
        agent = checked(http.post("/v1/agents", json=agent_body()))
        env = checked(http.post("/v1/environments", json=environment_body()))
        for i in range(SESSIONS):
            body = {
                "agent": agent["id"],
                "environment_id": env["id"],
                "title": f"Fix flaky test #{i}",
                "metadata": {"ticket": f"ENG-{1000 + i}"},
            }
            checked(http.post("/v1/sessions", json=body))
    log = LoggedSession(base_url)
    try:
        log.grow_to(LOG_EVENTS, calls=20)
    finally:
        log.close()
    return [
        Endpoint("GET an agent", f"/v1/agents/{agent['id']}"),
        Endpoint("GET an environment", f"/v1/environments/{env['id']}"),
        Endpoint("list sessions", "/v1/sessions"),
        Endpoint("events list (limit 100)", f"/v1/sessions/{log.session_id}/events", "limit=100"),
    ]


def capture(base_url: str, endpoints: list[Endpoint], out: Path) -> dict[str, int]:
    """Each endpoint's body as mas serves it, for the bare server; returns the body sizes."""
    bodies, sizes = {}, {}
    with api(base_url) as http:
        for endpoint in endpoints:
            response = http.get(endpoint.target)
            checked(response)
            bodies[endpoint.path] = {
                "content_type": response.headers["content-type"],
                "body": response.content.decode("utf-8"),
            }
            sizes[endpoint.name] = len(response.content)
    out.write_text(json.dumps(bodies))
    return sizes


@contextlib.contextmanager
def bare_server(bodies: Path, workdir: Path) -> Iterator[tuple[str, int]]:
    port = free_port()
    log_path = workdir / f"bare-{port}.log"
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                str(Path(__file__).with_name("bare_server.py")),
                "--port",
                str(port),
                "--bodies",
                str(bodies),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, proc, 30, log_path)
        yield url, proc.pid
    finally:
        proc.terminate()
        proc.wait(timeout=20)


# -- wrk ---------------------------------------------------------------------------------------------


def wrk_binary() -> str:
    found = shutil.which("wrk")
    if not found:
        raise SystemExit("bench_http needs wrk: apt-get install wrk (scripts/bench.sh does it)")
    return found


def wrk(url: str, connections: int, seconds: float, script: Path) -> dict[str, int]:
    args = [
        wrk_binary(),
        "-t1",
        f"-c{connections}",
        f"-d{round(seconds)}s",
        "--timeout",
        "10s",
        "-s",
        str(script),
    ]
    for key, value in HEADERS.items():
        args += ["-H", f"{key}: {value}"]
    done = subprocess.run([*args, url], capture_output=True, text=True, timeout=seconds + 60, check=True)
    match = re.search(r"^WRKJSON (.*)$", done.stdout, re.M)
    if not match:
        raise RuntimeError(f"wrk printed no report:\n{done.stdout}\n{done.stderr}")
    report: dict[str, int] = json.loads(match.group(1))
    if report["socket_errors"] or report["status_errors"]:
        raise RuntimeError(f"wrk saw errors against {url}: {report}")
    return report


def measure(url: str, pid: int, connections: int, seconds: float, script: Path) -> Run:
    cpu = cpu_seconds(pid)
    report = wrk(url, connections, seconds, script)
    used = cpu_seconds(pid) - cpu
    requests = max(report["requests"], 1)
    return Run(
        rps=requests / (report["duration_us"] / 1e6),
        p50_ms=report["p50_us"] / 1000,
        p99_ms=report["p99_us"] / 1000,
        cpu_us=used / requests * 1e6,
    )


# -- one database --------------------------------------------------------------------------------------


Results = dict[tuple[str, int, str], Cell]  # (endpoint name, connections, "mas" | "bare")


def bench_database(
    url: str, tmp: Path, args: argparse.Namespace, script: Path
) -> tuple[Results, dict[str, int], list[float]]:
    results: Results = {}
    loads: list[float] = []
    label = "pg" if url.startswith("postgresql") else "sqlite"
    with MasServer(tmp / label, url, label=label) as mas:
        print(f"{label}: populating through the API...", file=sys.stderr, flush=True)
        endpoints = populate(mas.url)
        sizes = capture(mas.url, endpoints, tmp / f"bodies-{label}.json")
        profiler = Profiler(args.profile, mas.pid)
        with bare_server(tmp / f"bodies-{label}.json", tmp) as (bare_url, bare_pid):
            servers = {"mas": (mas.url, mas.pid), "bare": (bare_url, bare_pid)}
            for endpoint in endpoints:  # warm both up (first-request imports, caches)
                for base, pid in servers.values():
                    measure(base + endpoint.target, pid, 10, 1, script)
            for repeat in range(args.repeats):
                loads.append(load_average())
                print(f"{label}: repeat {repeat + 1}/{args.repeats}", file=sys.stderr, flush=True)
                for endpoint in endpoints:
                    for connections in CONCURRENCY:
                        for name, (base, pid) in servers.items():
                            cell = results.setdefault((endpoint.name, connections, name), Cell())
                            cell.runs.append(
                                measure(base + endpoint.target, pid, connections, args.duration, script)
                            )
            if args.profile is not None:
                for endpoint in endpoints:
                    with profiler.phase(f"http-{label}-{endpoint.name.split(' (')[0].replace(' ', '-')}"):
                        measure(mas.url + endpoint.target, mas.pid, 10, PROFILE_SECONDS, script)
            print(profiler.summary())
    return results, sizes, loads


def report(label: str, results: Results, sizes: dict[str, int], loads: list[float]) -> str:
    lines = [
        f"## {label}: req/s median [min-max of repeats]; latency p50 / p99 in ms; "
        "CPU = server CPU µs per request",
        "",
        "| endpoint (body bytes) | conn | mas req/s | mas p50 / p99 | mas CPU | bare req/s | bare p50 / p99 "
        "| bare CPU | req/s ratio | CPU ratio | target ≥ 0.3x |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    names = list(dict.fromkeys(name for name, _, _ in results))
    worst = float("inf")
    for name in names:
        for connections in CONCURRENCY:
            mas, bare = results[(name, connections, "mas")], results[(name, connections, "bare")]
            rps_ratio = mas.med("rps") / bare.med("rps")
            worst = min(worst, rps_ratio)
            cpu_ratio = mas.med("cpu_us") / bare.med("cpu_us")
            lines.append(
                f"| {name} ({sizes[name]}) | {connections} "
                f"| {mas.med('rps'):.0f} [{spread([r.rps for r in mas.runs])}] "
                f"| {mas.med('p50_ms'):.2f} / {mas.med('p99_ms'):.2f} | {mas.med('cpu_us'):.0f} "
                f"| {bare.med('rps'):.0f} [{spread([r.rps for r in bare.runs])}] "
                f"| {bare.med('p50_ms'):.2f} / {bare.med('p99_ms'):.2f} | {bare.med('cpu_us'):.0f} "
                f"| {rps_ratio:.3f}x | {cpu_ratio:.1f}x "
                f"| {'met' if rps_ratio >= TARGET_RATIO else 'MISSED'} |"
            )
    lines += [
        "",
        f"worst req/s ratio: {worst:.3f}x (target ≥ {TARGET_RATIO}x); machine load average at each repeat: "
        + ", ".join(f"{x:.1f}" for x in loads),
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--databases", default="sqlite,postgres")
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--profile", type=Path, help="record py-spy profiles of mas per endpoint here")
    parser.add_argument("--json", type=Path, help="also write the raw figures here")
    args = parser.parse_args()
    wrk_binary()
    print(header("bench_http: mas reads next to a bare FastAPI endpoint (wrk)"), flush=True)
    raw: dict[str, object] = {}
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        script = tmp / "report.lua"
        script.write_text(WRK_REPORT)
        for database in args.databases.split(","):
            if database == "sqlite":
                measured = bench_database(f"sqlite+aiosqlite:///{tmp / 'bench.db'}", tmp, args, script)
            else:
                with postgres_database(postgres_admin_url()) as url:
                    measured = bench_database(url, tmp, args, script)
            results = measured[0]
            print(report("SQLite" if database == "sqlite" else "PostgreSQL", *measured), flush=True)
            raw[database] = {
                f"{k[0]}|{k[1]}|{k[2]}": [r.__dict__ for r in v.runs] for k, v in results.items()
            }
    print(f"\ntotal {time.monotonic() - started:.0f} s")
    dump_json(args.json, raw)


if __name__ == "__main__":
    main()
