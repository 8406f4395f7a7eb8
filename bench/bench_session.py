"""Session start-up and tool round trip through the whole stack, against raw Docker.

Runs a real `mas` server (SQLite, offline model, Docker sandbox) in this process and prints, in
one run:
  1. session create -> first bash result (offline model, environment image cached), next to
     `docker run --rm IMAGE true`;
  2. the bash tool's round trip inside a turn (the model's tool_use recorded -> its result on the
     stream), next to `docker exec CONTAINER true` on the same session container.
Targets: (1) p50 <= 0.3 s; (2) <= 0.2x docker exec.

    .venv/bin/python bench/bench_session.py [--sessions 10] [--rounds 20]
"""

from __future__ import annotations

import argparse
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import anthropic
import uvicorn
from anthropic.types.beta.sessions.beta_managed_agents_user_message_event_params import (
    BetaManagedAgentsUserMessageEventParams,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.config import Settings
from app.main import create_app

KEY = "bench-key"
BASH = '/tool bash {"command": "echo hi"}'


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(tmp: Path) -> tuple[uvicorn.Server, threading.Thread, str, str]:
    port = free_port()
    settings = Settings.model_validate(
        {
            "database_url": f"sqlite+aiosqlite:///{tmp / 'bench.db'}",
            "api_keys": [KEY],
            "model_backend": "offline",
            "anthropic_api_key": None,
            "sandbox_backend": "docker",
            "sandbox_instance": f"bench-{port}",
            "sandbox_state_dir": tmp / "sandbox",
            "port": port,
            "log_level": "warning",
        }
    )
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    return server, thread, f"http://127.0.0.1:{port}", f"bench-{port}"


def message(text: str) -> BetaManagedAgentsUserMessageEventParams:
    return {"type": "user.message", "content": [{"type": "text", "text": text}]}


def first_result_seconds(client: anthropic.Anthropic, agent_id: str, env_id: str) -> tuple[float, str]:
    start = time.perf_counter()
    session = client.beta.sessions.create(
        agent=agent_id, environment_id=env_id, initial_events=[message(BASH)]
    )
    with client.beta.sessions.events.stream(session.id) as stream:
        for event in stream:
            if event.type == "agent.tool_result":
                elapsed = time.perf_counter() - start
                break
    for event in client.beta.sessions.events.stream(session.id):
        if event.type == "session.status_idle":
            break
    return elapsed, session.id


def tool_round_trips(client: anthropic.Anthropic, session_id: str, rounds: int) -> list[float]:
    """Time from the response that asks for bash being recorded to the bash result arriving."""
    samples = []
    with client.beta.sessions.events.stream(session_id) as stream:
        for _ in range(rounds):
            client.beta.sessions.events.send(session_id, events=[message(BASH)])
            asked = None
            for event in stream:
                if event.type == "span.model_request_end" and asked is None:
                    asked = time.perf_counter()
                elif event.type == "agent.tool_result" and asked is not None:
                    samples.append(time.perf_counter() - asked)
                elif event.type == "session.status_idle":
                    break
    return samples


def timed(cmd: list[str], runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        out.append(time.perf_counter() - start)
    return out


def container_of(instance: str, session_id: str) -> str:
    """Sessions are found by container name (a warm-pool container is renamed on adoption)."""
    return f"mas-{instance}-{session_id}"


def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def row(name: str, samples: list[float], baseline: list[float]) -> str:
    p50, p90 = statistics.median(samples), pct(samples, 0.9)
    base = statistics.median(baseline)
    return f"| {name} | {p50 * 1000:.1f} | {p90 * 1000:.1f} | {base * 1000:.1f} | {p50 / base:.3f}x |"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sessions", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        server, thread, url, instance = start_server(Path(tmp))
        client = anthropic.Anthropic(base_url=url, api_key=KEY, max_retries=0)
        env = client.beta.environments.create(name="bench")
        agent = client.beta.agents.create(
            name="bench", model="claude-sonnet-4-6", tools=[{"type": "agent_toolset_20260401"}]
        )
        _, warm_session = first_result_seconds(client, agent.id, env.id)  # builds/reuses the image
        firsts, sessions = [], []
        for _ in range(args.sessions):
            elapsed, session_id = first_result_seconds(client, agent.id, env.id)
            firsts.append(elapsed)
            sessions.append(session_id)
        image = subprocess.run(
            ["docker", "inspect", "-f", "{{.Config.Image}}", container_of(instance, warm_session)],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        docker_run = timed(["docker", "run", "--rm", "--network", "none", image, "true"], args.sessions)
        trips = tool_round_trips(client, warm_session, args.rounds)
        docker_exec = timed(["docker", "exec", container_of(instance, warm_session), "true"], args.rounds)
        for session_id in [warm_session, *sessions]:
            client.beta.sessions.delete(session_id)
        server.should_exit = True
        thread.join(timeout=60)  # let the server remove its warm sandboxes before exiting
    print("| measure | p50 ms | p90 ms | baseline p50 ms | ratio |")
    print("| --- | --- | --- | --- | --- |")
    print(row("session create -> first bash result (vs `docker run --rm IMAGE true`)", firsts, docker_run))
    print(row("bash round trip in a turn (vs `docker exec CONTAINER true`)", trips, docker_exec))


if __name__ == "__main__":
    main()
