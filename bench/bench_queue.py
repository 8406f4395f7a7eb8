"""The self-hosted work queue and webhooks, through the public surface only.

1. **poll → ack → first tool result** on a `self_hosted` environment, next to the cloud-sandbox
   path (`MAS_SANDBOX_BACKEND=local`: the server runs the tool itself) measured in the same run.
   Each sample is a new session whose first message asks for one bash call. Two queue clients:
   * a tight poller (httpx: long poll, ack, read the log, run the command, post
     `user.tool_result`) — the protocol's own cost;
   * the SDK's unmodified `EnvironmentWorker` — what users run; its idle loop sleeps 1-3 s between
     empty polls, so its queue wait is mostly that jitter (reported apart).
   Times come from the server's own timestamps (work `created_at`/`acknowledged_at`, events'
   `processed_at`), so the bench's own overhead is not in them.
2. **webhook delivery latency**: a receiver on loopback; each `session.created` delivery's arrival
   minus the payload's `created_at` (stamped in the transaction that commits the session), p50/p99,
   next to a plain POST to the same receiver from this process (the floor).

3. **`mas dispatch`**: the same sessions served by `mas dispatch` (a process of its own, Docker):
   each gets a hardened container running the SDK worker, so its "ack → result" holds a
   container's start (`--dispatch-samples`, default 5; 0 skips it when there is no Docker).

    python bench/bench_queue.py [--samples 20] [--webhooks 50] [--dispatch-samples 5] [--json FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import signal
import subprocess
import tempfile
import threading
import time
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import anthropic
import httpx
from anthropic.lib.environments import EnvironmentWorker
from harness import HEADERS, MasServer, dump_json, free_port, header, mas_command, message, num, percentile

TOOLSET = {"type": "agent_toolset_20260401"}
PROMPT = '/tool bash {"command": "echo from-the-tool"}'


def ts(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def summary(values: list[float]) -> str:
    ms = [v * 1000 for v in values]
    return f"p50 {num(percentile(ms, 50))} ms, p99 {num(percentile(ms, 99))} ms (n={len(ms)})"


async def events(http: httpx.AsyncClient, session_id: str) -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = (
        await http.get(f"/v1/sessions/{session_id}/events", params={"limit": 1000})
    ).json()["data"]
    return data


async def wait_event(
    http: httpx.AsyncClient, session_id: str, kind: str, within: float = 120
) -> dict[str, Any]:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        found = [e for e in await events(http, session_id) if e["type"] == kind and e.get("processed_at")]
        if found:
            return found[0]
        await asyncio.sleep(0.02)
    raise RuntimeError(f"no {kind} in {session_id} after {within} s")


async def new_session(http: httpx.AsyncClient, agent_id: str, environment_id: str) -> tuple[str, float]:
    started = time.time()
    body = {"agent": agent_id, "environment_id": environment_id, "initial_events": [message(PROMPT)]}
    session = (await http.post("/v1/sessions", json=body)).json()
    return session["id"], started


# -- the cloud path --------------------------------------------------------------------------------


async def cloud_samples(http: httpx.AsyncClient, agent_id: str, samples: int) -> dict[str, list[float]]:
    env = (await http.post("/v1/environments", json={"name": "bench-cloud"})).json()["id"]
    out: dict[str, list[float]] = {"create_to_result": [], "use_to_result": []}
    for _ in range(samples):
        session_id, started = await new_session(http, agent_id, env)
        result = await wait_event(http, session_id, "agent.tool_result")
        use = await wait_event(http, session_id, "agent.tool_use")
        out["create_to_result"].append(ts(result["processed_at"]) - started)
        out["use_to_result"].append(ts(result["processed_at"]) - ts(use["processed_at"]))
    return out


# -- the queue path --------------------------------------------------------------------------------


def sessions_token(secret: str) -> str:
    token: str = json.loads(base64.urlsafe_b64decode(secret + "=" * (-len(secret) % 4)))["sessions_token"]
    return token


async def tight_poller(base_url: str, environment_id: str, key: str, stop: asyncio.Event) -> None:
    """poll (long) → ack → heartbeat → answer the first tool use → stop: the protocol, nothing else."""
    auth = {"authorization": f"Bearer {key}", "anthropic-beta": "managed-agents-2026-04-01"}
    work = f"/v1/environments/{environment_id}/work"
    async with httpx.AsyncClient(base_url=base_url, headers=auth, timeout=60) as http:
        while not stop.is_set():
            item = (await http.get(f"{work}/poll", params={"block_ms": 999})).json()
            if item is None:
                continue
            await http.post(f"{work}/{item['id']}/ack")
            token = {"authorization": f"Bearer {sessions_token(item['secret'])}"}
            await http.post(
                f"{work}/{item['id']}/heartbeat",
                params={"expected_last_heartbeat": "NO_HEARTBEAT"},
                headers=token,
            )
            use = await wait_event_as(http, item["data"]["id"], "agent.tool_use", token)
            command = json.loads(json.dumps(use["input"]))["command"]
            done = await asyncio.to_thread(
                subprocess.run, ["bash", "-c", command], capture_output=True, text=True, check=False
            )
            output = done.stdout
            result = {
                "type": "user.tool_result",
                "tool_use_id": use["id"],
                "content": [{"type": "text", "text": output}],
            }
            await http.post(
                f"/v1/sessions/{item['data']['id']}/events", json={"events": [result]}, headers=token
            )
            await http.post(f"{work}/{item['id']}/stop", json={"force": True}, headers=token)


async def wait_event_as(
    http: httpx.AsyncClient, session_id: str, kind: str, headers: dict[str, str]
) -> dict[str, Any]:
    while True:
        response = await http.get(
            f"/v1/sessions/{session_id}/events", params={"limit": 1000}, headers=headers
        )
        found: list[dict[str, Any]] = [e for e in response.json()["data"] if e["type"] == kind]
        if found:
            return found[0]
        await asyncio.sleep(0.01)


async def self_hosted_environment(http: httpx.AsyncClient, name: str) -> tuple[str, str]:
    """A new self_hosted environment and an environment key of it."""
    body = {"name": name, "config": {"type": "self_hosted"}}
    env: str = (await http.post("/v1/environments", json=body)).json()["id"]
    key: str = (await http.post(f"/v1/environments/{env}/keys", json={"name": "bench"})).json()["key"]
    return env, key


async def measure(
    http: httpx.AsyncClient, agent_id: str, env: str, samples: int, within: float = 120
) -> dict[str, list[float]]:
    """One new session at a time, each asking for one bash call that a queue client answers."""
    out: dict[str, list[float]] = {
        "create_to_result": [],
        "queue_wait": [],
        "ack_to_result": [],
        "use_to_result": [],
    }
    for _ in range(samples):
        session_id, started = await new_session(http, agent_id, env)
        result = await wait_event(http, session_id, "user.tool_result", within=within)
        use = await wait_event(http, session_id, "agent.tool_use")
        items = (await http.get(f"/v1/environments/{env}/work", params={"limit": 100})).json()["data"]
        item = next(i for i in items if i["data"]["id"] == session_id)
        done = ts(result["processed_at"])
        out["create_to_result"].append(done - started)
        out["queue_wait"].append(ts(item["acknowledged_at"]) - ts(item["created_at"]))
        out["ack_to_result"].append(done - ts(item["acknowledged_at"]))
        out["use_to_result"].append(done - ts(use["processed_at"]))
    return out


async def queue_samples(
    http: httpx.AsyncClient, base_url: str, agent_id: str, samples: int, client_kind: str, workdir: Path
) -> dict[str, list[float]]:
    env, key = await self_hosted_environment(http, f"bench-{client_kind}")
    stop = asyncio.Event()
    if client_kind == "tight":
        runner = asyncio.create_task(tight_poller(base_url, env, key, stop))
    else:
        sdk = anthropic.AsyncAnthropic(base_url=base_url, auth_token=key)
        worker = EnvironmentWorker(
            sdk, environment_id=env, environment_key=key, workdir=workdir, max_idle=0.5
        )
        runner = asyncio.create_task(worker.run())
    try:
        return await measure(http, agent_id, env, samples)
    finally:
        stop.set()
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)


def start_process(command: list[str], environment: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    with log_path.open("wb") as log:
        return subprocess.Popen(
            command, env=environment, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )


async def dispatch_samples(
    http: httpx.AsyncClient, base_url: str, agent_id: str, samples: int, workdir: Path
) -> dict[str, list[float]]:
    """`mas dispatch` as a user runs it (a process of its own, Docker, the sandbox base image):
    every session gets a hardened container whose SDK worker answers the tool call, so "ack →
    result" includes the container's start."""
    env, key = await self_hosted_environment(http, "bench-dispatch")
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("MAS_", "ANTHROPIC_"))}
    environment |= {
        "MAS_DISPATCH_ENVIRONMENT_KEY": key,
        "MAS_SANDBOX_STATE_DIR": str(workdir / "dispatch-state"),
        "MAS_SANDBOX_INSTANCE": f"bench-queue-{os.getpid()}",
        "MAS_LOG_LEVEL": "warning",
    }
    log_path = workdir / "dispatch.log"
    command = [*mas_command(), "dispatch", "--environment", env, "--url", base_url]
    command += ["--max-idle", "0.5", "--drain-seconds", "10"]
    proc = start_process(command, environment, log_path)
    try:
        ready = await until(lambda: "serving" in log_path.read_text() or proc.poll() is not None, 900)
        if not ready or proc.poll() is not None:
            raise RuntimeError(f"mas dispatch did not start:\n{log_path.read_text()[-3000:]}")
        try:
            return await measure(http, agent_id, env, samples, within=300)
        except RuntimeError as exc:
            raise RuntimeError(f"{exc}; mas dispatch said:\n{log_path.read_text()[-3000:]}") from None
    finally:
        proc.send_signal(signal.SIGTERM)  # drains: its sandboxes are removed
        try:
            await asyncio.to_thread(proc.wait, 120)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            await asyncio.to_thread(proc.wait, 30)


async def until(check: Any, within: float) -> bool:
    deadline = time.monotonic() + within
    while True:
        if check():
            return True
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.05)


# -- webhooks ---------------------------------------------------------------------------------------


class Receiver:
    def __init__(self) -> None:
        self.port = free_port()
        self.arrivals: list[tuple[float, dict[str, Any]]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                receiver.arrivals.append((time.time(), json.loads(body or b"{}")))
                self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"


async def webhook_samples(http: httpx.AsyncClient, agent_id: str, count: int) -> dict[str, list[float]]:
    receiver = Receiver()
    try:
        await http.post("/v1/webhooks", json={"url": receiver.url, "enabled_events": ["session.created"]})
        env = (await http.post("/v1/environments", json={"name": "bench-hooks"})).json()["id"]
        floor: list[float] = []
        async with httpx.AsyncClient(timeout=30) as plain:
            for _ in range(count):
                start = time.time()
                await plain.post(receiver.url, content=b"{}")
                floor.append(time.time() - start)
        receiver.arrivals.clear()
        for _ in range(count):
            await http.post("/v1/sessions", json={"agent": agent_id, "environment_id": env})
            await asyncio.sleep(0.05)
        await until(lambda: len(receiver.arrivals) >= count, within=60)
        latency = [
            at - ts(body["created_at"]) for at, body in receiver.arrivals if body.get("type") == "event"
        ]
        return {"delivery": latency, "plain_post": floor}
    finally:
        receiver.server.shutdown()


async def run(url: str, samples: int, hooks: int, dispatched: int, workdir: Path) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=url, headers=HEADERS, timeout=120) as http:
        agent = (
            await http.post(
                "/v1/agents", json={"name": "bench-queue", "model": "claude-sonnet-4-6", "tools": [TOOLSET]}
            )
        ).json()
        results: dict[str, Any] = {}
        results["cloud"] = await cloud_samples(http, agent["id"], samples)
        results["queue_tight"] = await queue_samples(http, url, agent["id"], samples, "tight", workdir)
        results["queue_sdk"] = await queue_samples(http, url, agent["id"], samples, "sdk", workdir)
        if dispatched:
            results["queue_dispatch"] = await dispatch_samples(http, url, agent["id"], dispatched, workdir)
        results["webhooks"] = await webhook_samples(http, agent["id"], hooks)
        return results


def row(name: str, figures: dict[str, list[float]]) -> str:
    cells = [
        summary(figures[k]) if k in figures else "-"
        for k in ("create_to_result", "use_to_result", "queue_wait", "ack_to_result")
    ]
    return f"| {name} | " + " | ".join(cells) + " |"


def report(results: dict[str, Any], samples: int) -> str:
    cloud, tight, sdk, hooks = (
        results["cloud"],
        results["queue_tight"],
        results["queue_sdk"],
        results["webhooks"],
    )
    ratio = percentile(tight["create_to_result"], 50) / percentile(cloud["create_to_result"], 50)
    dispatch_rows = []
    if "queue_dispatch" in results:
        dispatched = results["queue_dispatch"]
        dispatch_rows.append(row("work queue, `mas dispatch` (a container each)", dispatched))
        slower = percentile(dispatched["create_to_result"], 50) / percentile(cloud["create_to_result"], 50)
        dispatch_rows.append(f"\n`mas dispatch` / cloud, create → first result (p50): {slower:.2f}x")
    lines = [
        header("bench_queue: the self-hosted work queue and webhooks"),
        f"{samples} sessions per path, each one bash call (`echo`), SQLite, offline model",
        "",
        "| path | create → first tool result | tool use → result | queue wait (create→ack) | ack → result |",
        "| --- | --- | --- | --- | --- |",
        row("cloud sandbox (local backend)", cloud),
        row("work queue, tight poller", tight),
        row("work queue, SDK `EnvironmentWorker`", sdk),
        *dispatch_rows,
        "",
        f"tight poller / cloud, create → first result (p50): {ratio:.2f}x",
        "",
        f"webhook delivery after commit: {summary(hooks['delivery'])}",
        f"plain POST to the same receiver (floor): {summary(hooks['plain_post'])}",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--samples", type=int, default=20)
    parser.add_argument("--webhooks", type=int, default=50)
    parser.add_argument(
        "--dispatch-samples", type=int, default=5, help="sessions through `mas dispatch` (Docker); 0 skips"
    )
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mas-bench-queue-") as tmp:
        workdir = Path(tmp)
        server = MasServer(
            workdir, f"sqlite+aiosqlite:///{workdir}/mas.db", env={"MAS_WEBHOOK_POLL_SECONDS": "0.05"}
        )
        server.start()
        try:
            (workdir / "worker").mkdir()
            results = asyncio.run(
                run(server.url, args.samples, args.webhooks, args.dispatch_samples, workdir / "worker")
            )
        finally:
            server.stop()
    print(report(results, args.samples))
    dump_json(args.json, results)


if __name__ == "__main__":
    main()
