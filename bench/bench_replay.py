"""A replayed turn next to an offline-model turn: what running agent tests from cassettes costs.

Three `mas serve` processes (the CLI and the public HTTP API only, see harness.py): an offline
mas, which is the baseline and also the upstream that a recording mas records one tool turn from;
then a replaying mas serves that cassette with no upstream. The same turn (a tool call, its
result, the final answer: two model requests) then runs alternately on the offline mas and on the
replaying mas, each in a new session, so a busy spell on the shared machine hits both.
A turn's latency = from sending the `user.message` to reading `session.status_idle` on the stream.

    .venv/bin/python bench/bench_replay.py [--turns 20] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import httpx
from harness import (
    MasServer,
    agent_body,
    api,
    checked,
    dump_json,
    header,
    load_average,
    median,
    message,
    num,
    percentile,
    spread,
)

TURN = 'Check the build.\n/tool bash {"command": "echo build ok"}'
CASSETTE = "bench/tool_turn"


@dataclass
class Figures:
    offline: list[float] = field(default_factory=list)
    replay: list[float] = field(default_factory=list)
    offline_requests: list[float] = field(default_factory=list)
    replay_requests: list[float] = field(default_factory=list)
    load: list[float] = field(default_factory=list)


@dataclass
class Turn:
    seconds: float
    model_requests: list[float]


def model_request_seconds(client: httpx.Client, session_id: str) -> list[float]:
    """Each model request's span: `span.model_request_start` to its `span.model_request_end`."""
    events = checked(client.get(f"/v1/sessions/{session_id}/events", params={"limit": 1000}))["data"]
    starts = {e["id"]: e["processed_at"] for e in events if e["type"] == "span.model_request_start"}
    return [
        (
            datetime.fromisoformat(e["processed_at"])
            - datetime.fromisoformat(starts[e["model_request_start_id"]])
        ).total_seconds()
        for e in events
        if e["type"] == "span.model_request_end"
    ]


def run_turn(client: httpx.Client, agent_id: str, environment_id: str) -> Turn:
    """One turn in a new session: seconds from the send to `session.status_idle` on the stream,
    and its model requests' spans."""
    session = checked(client.post("/v1/sessions", json={"agent": agent_id, "environment_id": environment_id}))
    with client.stream("GET", f"/v1/sessions/{session['id']}/events/stream") as stream:
        start = time.perf_counter()
        checked(client.post(f"/v1/sessions/{session['id']}/events", json={"events": [message(TURN)]}))
        for line in stream.iter_lines():
            if line.startswith("data:") and '"session.status_idle"' in line:
                event = json.loads(line[5:])
                if event["stop_reason"]["type"] != "end_turn":
                    raise RuntimeError(f"the turn did not end normally: {event}")
                seconds = time.perf_counter() - start
                return Turn(seconds, model_request_seconds(client, session["id"]))
    raise RuntimeError("the stream ended before session.status_idle")


def prepare(client: httpx.Client) -> tuple[str, str]:
    agent = checked(client.post("/v1/agents", json=agent_body()))
    environment = checked(client.post("/v1/environments", json={"name": "bench-replay"}))
    return agent["id"], environment["id"]


def cassette_env(mode: str, cassettes: Path, upstream: str) -> dict[str, str]:
    return {
        "MAS_MODEL_BACKEND": mode,
        "MAS_CASSETTE_DIR": str(cassettes),
        "MAS_CASSETTE": CASSETTE,
        "MAS_ANTHROPIC_BASE_URL": upstream,  # recording: the offline mas; replaying: never contacted
    }


def server(workdir: Path, label: str, env: dict[str, str] | None = None) -> MasServer:
    return MasServer(workdir / label, f"sqlite+aiosqlite:///{workdir / label}.db", env or {}, label)


def record(workdir: Path, upstream: str) -> int:
    """One turn through a recording mas whose upstream is the offline mas; interactions recorded."""
    cassettes = workdir / "cassettes"
    with server(workdir, "rec", cassette_env("record", cassettes, upstream)) as rec, api(rec.url) as client:
        run_turn(client, *prepare(client))
    return len(json.loads((cassettes / f"{CASSETTE}.json").read_text())["interactions"])


def measure(turns: int, workdir: Path) -> tuple[Figures, int]:
    figures = Figures()
    with server(workdir, "offline") as offline:
        recorded = record(workdir, offline.url)
        replaying = cassette_env("replay", workdir / "cassettes", offline.url)
        with (
            server(workdir, "replay", replaying) as rep,
            api(offline.url) as offline_client,
            api(rep.url) as replay_client,
        ):
            offline_ids, replay_ids = prepare(offline_client), prepare(replay_client)
            run_turn(offline_client, *offline_ids)  # warm-up: sandboxes, connections, caches
            run_turn(replay_client, *replay_ids)
            for _ in range(turns):
                figures.load.append(load_average())
                turn = run_turn(offline_client, *offline_ids)
                figures.offline.append(turn.seconds)
                figures.offline_requests.extend(turn.model_requests)
                turn = run_turn(replay_client, *replay_ids)
                figures.replay.append(turn.seconds)
                figures.replay_requests.extend(turn.model_requests)
    return figures, recorded


def report(figures: Figures, recorded: int, turns: int) -> str:
    def row(name: str, values: list[float]) -> str:
        ms = [v * 1000 for v in values]
        return f"| {name} | {num(median(ms))} | {num(percentile(ms, 90))} | {spread(ms)} |"

    ratio = median(figures.replay) / median(figures.offline)
    request_ratio = median(figures.replay_requests) / median(figures.offline_requests)
    return "\n".join(
        [
            header("bench_replay: a replayed turn vs an offline-model turn"),
            f"turn: one tool call + its result + the final answer ({recorded} model requests recorded), "
            f"{turns} turns each, alternating, a new session per turn; "
            f"load average during the runs {num(min(figures.load))}-{num(max(figures.load))}",
            "",
            "| measure | median ms | p90 ms | min-max ms |",
            "| --- | --- | --- | --- |",
            row("turn, offline model (baseline)", figures.offline),
            row("turn, replayed from a cassette", figures.replay),
            row("model request span, offline model (baseline)", figures.offline_requests),
            row("model request span, replayed", figures.replay_requests),
            "",
            f"replay / offline (median): turn {ratio:.2f}, model request {request_ratio:.2f}",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--turns", type=int, default=20)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mas-bench-replay-") as tmp:
        figures, recorded = measure(args.turns, Path(tmp))
    print(report(figures, recorded, args.turns))
    dump_json(args.json, {"figures": figures, "recorded": recorded})


if __name__ == "__main__":
    main()
