"""What observability costs: request throughput and event delivery of `mas serve` with metrics
and tracing off, metrics on (the default), and metrics plus tracing exported to a collector.

    .venv/bin/python bench/bench_observability.py [--duration 5] [--repeats 3] [--turns 10]

Three `mas serve` processes on one SQLite file each (offline model, local sandbox):

* `off`: MAS_METRICS_ENABLED=false, no MAS_OTLP_ENDPOINT (the baseline, taken in this run);
* `metrics`: the default (every request timed by route, /metrics served);
* `metrics+tracing`: MAS_OTLP_ENDPOINT set to an OTLP/HTTP receiver in this process that accepts
  and drops the spans.

Throughput: wrk GETs an agent with 10 connections for `--duration` seconds, the variants taking
turns, `--repeats` times (req/s, median). Event delivery: `--turns` turns per variant, each a
message sent with the stream open, timed from the send to the `session.status_idle` frame.
Printed: the figures and each variant's ratio to `off`. Target (issue 16): metrics on costs
<= 5 % of throughput (ratio >= 0.95).
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


def turn_seconds(base_url: str, turns: int) -> list[float]:
    """Send -> `session.status_idle` on the open stream, per turn (the offline model answers)."""
    with api(base_url) as http:
        agent = checked(http.post("/v1/agents", json=agent_body()))
        environment = checked(http.post("/v1/environments", json=environment_body()))
        session = checked(
            http.post("/v1/sessions", json={"agent": agent["id"], "environment_id": environment["id"]})
        )
        times = []
        for i in range(turns):
            path = f"/v1/sessions/{session['id']}/events"
            with http.stream("GET", path + "/stream") as stream:
                started = time.perf_counter()
                text = {"type": "text", "text": f"hi {i}"}
                body = {"events": [{"type": "user.message", "content": [text]}]}
                checked(http.post(path, json=body))
                for line in stream.iter_lines():
                    if line == "event: session.status_idle":
                        times.append(time.perf_counter() - started)
                        break
        return times


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--turns", type=int, default=10)
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
            rps: dict[str, list[float]] = {name: [] for name in servers}
            for _ in range(args.repeats):
                for name, server in servers.items():
                    rps[name].append(measure(targets[name], server.pid, 10, args.duration, script).rps)
            delivery = {name: median(turn_seconds(s.url, args.turns)) for name, s in servers.items()}
            loads.append(load_average())
        finally:
            for server in servers.values():
                server.stop()
            receiver.shutdown()
    base_rps, base_turn = median(rps["off"]), delivery["off"]
    print(f"{'variant':<18} {'GET agent req/s':>16} {'ratio':>7} {'send->idle ms':>14} {'ratio':>7}")
    for name in servers:
        r, t = median(rps[name]), delivery[name]
        print(f"{name:<18} {r:>16.0f} {r / base_rps:>7.2f} {t * 1000:>14.1f} {t / base_turn:>7.2f}")
    print(f"load average {loads[0]:.1f} -> {loads[-1]:.1f} (2 cores, shared)")


if __name__ == "__main__":
    main()
