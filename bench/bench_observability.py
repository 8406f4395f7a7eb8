"""What observability costs: request throughput and event delivery of `mas serve` with metrics
and tracing off, metrics on (the default), and metrics plus tracing exported to a collector.

    .venv/bin/python bench/bench_observability.py [--duration 5] [--repeats 6] [--turns 12]

Four `mas serve` processes on one SQLite file each (offline model, local sandbox):

* `off`: MAS_METRICS_ENABLED=false, no MAS_OTLP_ENDPOINT (the baseline, taken in this run);
* `off (control)`: the same again, on a server of its own (the noise floor);
* `metrics`: the default (every request timed by route, /metrics served);
* `metrics+tracing`: MAS_OTLP_ENDPOINT set to an OTLP/HTTP receiver in this process that accepts
  and drops the spans.

Throughput: wrk GETs an agent with 10 connections for `--duration` seconds per run; the variants
take turns in a rotating order (A B C, B C A, C A B, ...) for `--repeats` rounds, so drift in the
machine's load reaches every variant alike. Printed per variant: the median req/s, and the median
server CPU time per request (the API process's CPU seconds over the run / requests), the measure
that other processes on a shared machine disturb least. Event delivery: `--turns` rounds, each
one turn per variant in the same rotation, a message sent with the stream open, timed from the
send to the `session.status_idle` frame (median). Ratios are to `off`; `off (control)` is a
second `off` server, so its ratio shows how much of a difference the machine alone makes in this
run. Last, the work metrics add to a request is timed in this process (CPU time of the route
template, the label lookup and one histogram observation) and set against `off`'s CPU per
request: the figure no neighbour's load can move. Target (issue 16): metrics on costs <= 5 %.
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from bench_http import WRK_REPORT, measure, wrk_binary
from harness import MasServer, agent_body, api, checked, environment_body, header, load_average, median

VARIANTS: dict[str, dict[str, str]] = {
    "off": {"MAS_METRICS_ENABLED": "false"},
    # The same as `off` on a server of its own: its ratio to `off` is the noise of this run.
    "off (control)": {"MAS_METRICS_ENABLED": "false"},
    "metrics": {},
    "metrics+tracing": {},  # MAS_OTLP_ENDPOINT added once the receiver listens
}


class _Drop(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length") or 0))
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def new_session(base_url: str) -> str:
    with api(base_url) as http:
        agent = checked(http.post("/v1/agents", json=agent_body()))
        environment = checked(http.post("/v1/environments", json=environment_body()))
        body = {"agent": agent["id"], "environment_id": environment["id"]}
        return str(checked(http.post("/v1/sessions", json=body))["id"])


def turn_seconds(base_url: str, session_id: str, i: int) -> float:
    """Send -> `session.status_idle` on the open stream, for one turn (the offline model answers)."""
    with api(base_url) as http:
        path = f"/v1/sessions/{session_id}/events"
        with http.stream("GET", path + "/stream") as stream:
            started = time.perf_counter()
            text = {"type": "text", "text": f"hi {i}"}
            checked(http.post(path, json={"events": [{"type": "user.message", "content": [text]}]}))
            for line in stream.iter_lines():
                if line == "event: session.status_idle":
                    return time.perf_counter() - started
    raise RuntimeError("the stream ended before session.status_idle")


def metrics_work_us(calls: int = 200_000) -> float:
    """CPU microseconds of what metrics add to one request, measured in this process: the route
    template of a matched route, the histogram's label lookup and one observation."""
    from app.api.middleware import route_template
    from app.observability.metrics import HTTP_REQUESTS

    scope = {
        "route": object(),
        "path_params": {"agent_id": "agent_011CZkYr6nGq2hT2uK3f9vXw"},
        "path": "/v1/agents/agent_011CZkYr6nGq2hT2uK3f9vXw",
        "method": "GET",
    }
    started = time.process_time()
    for _ in range(calls):
        HTTP_REQUESTS.labels(scope["method"], route_template(scope), "200").observe(0.01)
    return (time.process_time() - started) / calls * 1e6


def rotation(names: list[str], round_: int) -> list[str]:
    """The order of one round: each variant goes first, second, ... equally often."""
    shift = round_ % len(names)
    return names[shift:] + names[:shift]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run")
    parser.add_argument("--repeats", type=int, default=6, help="rounds of wrk runs (rotating order)")
    parser.add_argument("--turns", type=int, default=12, help="rounds of one turn per variant")
    args = parser.parse_args()
    wrk_binary()
    print(header("bench_observability: metrics and tracing on next to off"), flush=True)
    receiver = ThreadingHTTPServer(("127.0.0.1", 0), _Drop)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    VARIANTS["metrics+tracing"]["MAS_OTLP_ENDPOINT"] = f"http://127.0.0.1:{receiver.server_address[1]}"
    loads = [load_average()]
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        script = tmp / "report.lua"
        script.write_text(WRK_REPORT)
        servers = {
            name: MasServer(tmp / name, f"sqlite+aiosqlite:///{tmp / name / 'bench.db'}", env, label=name)
            for name, env in VARIANTS.items()
        }
        try:
            for server in servers.values():
                server.start(timeout=300)
            targets = {}
            for name, server in servers.items():
                with api(server.url) as http:
                    agent = checked(http.post("/v1/agents", json=agent_body()))
                targets[name] = f"{server.url}/v1/agents/{agent['id']}"
                measure(targets[name], server.pid, 10, 1, script)  # warm up
            names = list(servers)
            rps: dict[str, list[float]] = {name: [] for name in names}
            cpu: dict[str, list[float]] = {name: [] for name in names}
            for round_ in range(args.repeats):
                for name in rotation(names, round_):
                    run = measure(targets[name], servers[name].pid, 10, args.duration, script)
                    rps[name].append(run.rps)
                    cpu[name].append(run.cpu_us)
            sessions = {name: new_session(server.url) for name, server in servers.items()}
            delivery: dict[str, list[float]] = {name: [] for name in names}
            for i in range(args.turns):
                for name in rotation(names, i):
                    delivery[name].append(turn_seconds(servers[name].url, sessions[name], i))
            loads.append(load_average())
        finally:
            for server in servers.values():
                server.stop()
            receiver.shutdown()
    base_rps, base_cpu, base_turn = median(rps["off"]), median(cpu["off"]), median(delivery["off"])
    print(
        f"{'variant':<18} {'req/s':>8} {'ratio':>6} {'CPU us/req':>11} {'ratio':>6}"
        f" {'send->idle ms':>14} {'ratio':>6}"
    )
    for name in names:
        r, c, t = median(rps[name]), median(cpu[name]), median(delivery[name])
        print(
            f"{name:<18} {r:>8.0f} {r / base_rps:>6.2f} {c:>11.0f} {c / base_cpu:>6.2f}"
            f" {t * 1000:>14.1f} {t / base_turn:>6.2f}"
        )
    work = metrics_work_us()
    print(
        f"metrics' own work per request (in process): {work:.1f} us CPU = "
        f"{work / base_cpu * 100:.2f} % of `off`'s {base_cpu:.0f} us per request"
    )
    print(f"load average {loads[0]:.1f} -> {loads[-1]:.1f} (2 cores, shared)")


if __name__ == "__main__":
    main()
