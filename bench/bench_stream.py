"""Append-to-delivery latency of session streams, next to a bare SSE endpoint.

    .venv/bin/python bench/bench_stream.py            # MAS_TEST_POSTGRES_URL set: PostgreSQL rows too

For 1, 10 and 100 subscribers it measures the time from just before an event is appended (its
timestamp travels in the event) to its arrival at SSE clients:

* mas, one process (SQLite): the writer appends through the service layer inside the server's
  process and event loop, as the embedded worker does.
* mas, across processes (PostgreSQL): the writer is another process with its own Database and
  Notifier; events reach the server through LISTEN/NOTIFY.
* bare: a minimal Starlette + sse-starlette app pushing a timestamped message to N queues.

The clients run in a separate process with the same code for every target (raw httpx SSE).
Targets: p99 <= 20 ms in one process, <= 50 ms across processes. Loopback only; bounded in time.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing as mp
import os
import socket
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import uvicorn
from sqlalchemy.engine import make_url
from sse_starlette import EventSourceResponse
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.routing import Route

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.config import Settings
from app.db import migrate
from app.db.engine import Database
from app.events import service as events
from app.events.notifier import Notifier
from app.events.pg_listener import asyncpg_dsn
from app.events.types import EventRecord
from app.main import create_app
from app.sessions import service as sessions
from app.sessions import transitions

API_KEY = "sk-mas-bench"
HEADERS = {"x-api-key": API_KEY, "anthropic-version": "2023-06-01"}
SUBSCRIBERS = (1, 10, 100)
MESSAGES = 200
INTERVAL = 0.005  # between appends: latency under a steady stream, not a throughput test
RUN_TIMEOUT = 30.0


# -- servers -------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Served:
    """An ASGI app served by uvicorn in a thread; `run` executes a coroutine on its loop."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> Served:
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("server did not start")
            time.sleep(0.02)
        self.loop = self.server.servers[0].get_loop()
        return self

    def __exit__(self, *_: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)

    def run(self, make: Callable[[], Awaitable[Any]], timeout: float = 120) -> Any:
        async def wrapper() -> Any:
            return await make()

        return asyncio.run_coroutine_threadsafe(wrapper(), self.loop).result(timeout)


def bare_app() -> Starlette:
    """The baseline: N subscriber queues and a publisher, nothing else."""
    queues: set[asyncio.Queue[str]] = set()

    async def stream(_request: Request) -> EventSourceResponse:
        queue: asyncio.Queue[str] = asyncio.Queue()
        queues.add(queue)

        async def frames() -> AsyncIterator[dict[str, str]]:
            try:
                while True:
                    yield {"event": "message", "data": await queue.get()}
            finally:
                queues.discard(queue)

        return EventSourceResponse(frames(), ping=10)

    app = Starlette(routes=[Route("/stream", stream)])
    app.state.queues = queues
    return app


def mas_settings(database_url: str) -> Settings:
    return Settings.model_validate(
        {
            "database_url": database_url,
            "api_keys": [API_KEY],
            "auto_migrate": False,
            "embedded_worker": False,
            "model_backend": "offline",
            "sandbox_backend": "local",
            "log_level": "warning",
        }
    )


def new_session(base_url: str) -> str:
    with httpx.Client(base_url=base_url, headers=HEADERS, timeout=30) as http:
        agent = http.post("/v1/agents", json={"name": "bench", "model": "claude-sonnet-4-6"}).json()
        environment = http.post("/v1/environments", json={"name": f"bench-{uuid.uuid4().hex[:6]}"}).json()
        session = http.post("/v1/sessions", json={"agent": agent["id"], "environment_id": environment["id"]})
        return str(session.json()["id"])


# -- writers -------------------------------------------------------------------------------------


def stamped(i: int) -> EventRecord:
    return {"type": "agent.message", "content": [{"type": "text", "text": f"{time.time_ns()}:{i}"}]}


async def mas_writes(database: Database, notifier: Notifier, session_id: str, count: int) -> list[float]:
    """A turn of `count` agent messages, one unit of work each, as the worker appends them.
    Returns how long each append took to commit (ms): part of every delivery's latency."""
    commits: list[float] = []
    async with database.unit_of_work() as db:
        row = await sessions.load(db, session_id, for_update=True)
        await transitions.start_running(db, notifier, row)
    for i in range(count):
        begun = time.perf_counter()
        async with database.unit_of_work() as db:
            await events.append(db, notifier, session_id, [stamped(i)])
        commits.append((time.perf_counter() - begun) * 1000)
        await asyncio.sleep(INTERVAL)
    async with database.unit_of_work() as db:
        row = await sessions.load(db, session_id, for_update=True)
        await transitions.go_idle(db, notifier, row, {"type": "end_turn"})
    return commits


async def bare_writes(queues: set[asyncio.Queue[str]], count: int) -> None:
    for i in range(count):
        data = json.dumps(stamped(i))
        for queue in tuple(queues):
            queue.put_nowait(data)
        await asyncio.sleep(INTERVAL)


def writer_process(database_url: str, session_id: str, count: int, results: Any) -> None:
    """The writer of the cross-process rows: its own Database and Notifier."""

    async def main() -> list[float]:
        database = Database(database_url)
        try:
            return await mas_writes(database, Notifier(), session_id, count)
        finally:
            await database.dispose()

    results.put(asyncio.run(main()))


# -- clients (a separate process, the same code for every target) --------------------------------


def arrival_ms(data: str) -> float | None:
    event = json.loads(data)
    if event.get("type") != "agent.message":
        return None
    sent = int(event["content"][0]["text"].split(":")[0])
    return (time.time_ns() - sent) / 1e6


async def subscribe(
    http: httpx.AsyncClient, url: str, count: int, ready: asyncio.Event, out: list[float]
) -> None:
    async with http.stream("GET", url) as response:
        ready.set()
        seen = 0
        async for line in response.aiter_lines():
            if line.startswith("data:"):
                latency = arrival_ms(line[5:].strip())
                if latency is not None:
                    out.append(latency)
                    seen += 1
                    if seen == count:
                        return


async def clients(url: str, subscribers: int, count: int, connected: Any, results: Any) -> None:
    limits = httpx.Limits(max_connections=subscribers + 5)
    latencies: list[float] = []
    async with httpx.AsyncClient(headers=HEADERS, timeout=RUN_TIMEOUT, limits=limits) as http:
        readies = [asyncio.Event() for _ in range(subscribers)]
        tasks = [asyncio.create_task(subscribe(http, url, count, r, latencies)) for r in readies]
        await asyncio.gather(*(r.wait() for r in readies))
        connected.set()
        await asyncio.wait_for(asyncio.gather(*tasks), RUN_TIMEOUT)
    results.put(latencies)


def client_process(url: str, subscribers: int, count: int, connected: Any, results: Any) -> None:
    asyncio.run(clients(url, subscribers, count, connected, results))


# -- one measurement -----------------------------------------------------------------------------


def measure(
    url: str, subscribers: int, wait_subscribed: Callable[[int], None], write: Callable[[], None]
) -> list[float]:
    ctx = mp.get_context("spawn")
    connected, results = ctx.Event(), ctx.Queue()
    proc = ctx.Process(target=client_process, args=(url, subscribers, MESSAGES, connected, results))
    proc.start()
    try:
        if not connected.wait(RUN_TIMEOUT):
            raise RuntimeError("clients did not connect")
        wait_subscribed(subscribers)
        write()
        latencies: list[float] = results.get(timeout=RUN_TIMEOUT)
    finally:
        proc.join(timeout=RUN_TIMEOUT)
        if proc.is_alive():
            proc.kill()
    if len(latencies) != subscribers * MESSAGES:
        raise RuntimeError(f"{len(latencies)} deliveries, expected {subscribers * MESSAGES}")
    return latencies


def until(check: Callable[[], bool]) -> None:
    deadline = time.monotonic() + RUN_TIMEOUT
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError("subscribers never attached")
        time.sleep(0.01)


def bench_bare(subscribers: int) -> list[float]:
    with Served(bare_app()) as served:
        queues = served.app.state.queues
        return measure(
            served.url + "/stream",
            subscribers,
            lambda n: until(lambda: len(queues) >= n),
            lambda: served.run(lambda: bare_writes(queues, MESSAGES)),
        )


def bench_mas(database_url: str, subscribers: int, *, cross_process: bool) -> tuple[list[float], list[float]]:
    """Delivery latencies, and the commit times of the appends."""
    commits: list[float] = []
    with Served(create_app(mas_settings(database_url))) as served:
        session_id = new_session(served.url)
        notifier: Notifier = served.app.state.notifier
        database: Database = served.app.state.db

        def write() -> None:
            if not cross_process:
                commits.extend(served.run(lambda: mas_writes(database, notifier, session_id, MESSAGES)))
                return
            ctx = mp.get_context("spawn")
            results = ctx.Queue()
            proc = ctx.Process(target=writer_process, args=(database_url, session_id, MESSAGES, results))
            proc.start()
            commits.extend(results.get(timeout=RUN_TIMEOUT))
            proc.join(RUN_TIMEOUT)

        latencies = measure(
            f"{served.url}/v1/sessions/{session_id}/events/stream",
            subscribers,
            lambda n: until(lambda: notifier.subscriber_count(session_id) >= n),
            write,
        )
    return latencies, commits


# -- databases and report ------------------------------------------------------------------------


def postgres_database() -> tuple[str, Callable[[], None]] | None:
    admin = os.environ.get("MAS_BENCH_POSTGRES_URL") or os.environ.get("MAS_TEST_POSTGRES_URL")
    if not admin:
        return None
    name = f"mas_bench_{uuid.uuid4().hex[:8]}"

    async def admin_sql(sql: str) -> None:
        conn = await asyncpg.connect(asyncpg_dsn(admin))
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin_sql(f'CREATE DATABASE "{name}"'))
    url = make_url(admin).set(database=name).render_as_string(hide_password=False)
    migrate.upgrade(url)
    return url, lambda: asyncio.run(admin_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def percentile(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


def row(
    label: str, n: int, measured: tuple[list[float], list[float]], bare: list[float], target: float
) -> str:
    mas, commits = measured
    p50, p99 = percentile(mas, 50), percentile(mas, 99)
    b50, b99 = percentile(bare, 50), percentile(bare, 99)
    c50, c99 = percentile(commits, 50), percentile(commits, 99)
    verdict = "ok" if p99 <= target else "MISSED"
    return (
        f"| {label} | {n} | {p50:.2f} | {p99:.2f} | {b50:.2f} | {b99:.2f} "
        f"| {p50 / b50:.1f}x | {p99 / b99:.1f}x | {c50:.2f} / {c99:.2f} "
        f"| ≤ {target:.0f} ms: {verdict} |"
    )


def main() -> None:
    started = time.monotonic()
    bare = {n: bench_bare(n) for n in SUBSCRIBERS}
    lines = [
        f"Append-to-delivery latency in ms, {MESSAGES} events {INTERVAL * 1000:.0f} ms apart "
        f"(bare = sse-starlette pushing to N queues; commit = the append's own transaction, p50 / p99)",
        "",
        "| mas | subscribers | p50 | p99 | bare p50 | bare p99 | p50 ratio | p99 ratio | commit | target |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    with tempfile.TemporaryDirectory() as tmp:
        sqlite_url = f"sqlite+aiosqlite:///{tmp}/bench.db"
        migrate.upgrade(sqlite_url)
        for n in SUBSCRIBERS:
            lines.append(
                row("one process, SQLite", n, bench_mas(sqlite_url, n, cross_process=False), bare[n], 20)
            )
    pg = postgres_database()
    if pg is None:
        lines.append(
            "| across processes, PostgreSQL | - | skipped: set MAS_TEST_POSTGRES_URL | | | | | | | |"
        )
    else:
        url, drop = pg
        try:
            for n in SUBSCRIBERS:
                measured = bench_mas(url, n, cross_process=True)
                lines.append(row("across processes, PostgreSQL", n, measured, bare[n], 50))
        finally:
            drop()
    lines += ["", f"total {time.monotonic() - started:.1f} s"]
    print("\n".join(lines))


if __name__ == "__main__":
    main()
