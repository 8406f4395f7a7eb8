"""Replay's first frame at 1k/10k/50k events, without building 50k events through the API.

    .venv/bin/python bench/bench_replay_first.py [--sizes 1000,10000,50000] [--database sqlite|postgres]

`bench_log.py` grows its log through the API (8 minutes to 50k events) and measures everything at
each size. The replay's first frame needs only a log of the size: here one session's log is built
through the API to the smallest size (the same build turns, `sessionlog.py`), then grown to each
larger size by copying its own rows in the database (new ids and `seq`s after the last one, the
same types, data and times; `sessions.last_seq` moved to match), which takes seconds.

At each size: a new stream with `Last-Event-ID` = the log's first event (everything after it is
replayed, as in `bench_log`), timed from the request to the first frame, then closed; the clock
starts after the client is built (see `bench_log.replay`). `--repeats` times, each once the
server is idle again (`settle`); median [min-max].
Target (issue 10, on a 2-core machine): replay first frame at 50k <= 50 ms.

The copies are the bench's own rows, not the agent loop's: good for what a replay reads (the
index range after the given event, and the event's own lookup by id), not for anything that
analyses the log (a turn, `bench_log`'s other measures).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

import httpx
from harness import (
    HEADERS,
    MasServer,
    _asyncpg_dsn,
    cpu_seconds,
    database_url,
    header,
    load_average,
    median,
    spread,
)
from sessionlog import LoggedSession, frames, log_arguments, sizes_of

TARGET_MS = 50.0
# Copies every base row once per block: `seq + offset`, the id with the offset as a suffix.
COPY_SQL = (
    "INSERT INTO session_events (id, session_id, seq, type, data, created_at, processed_at, harness) "
    "SELECT id || '_c{offset}', session_id, seq + {offset}, type, data, created_at, processed_at, harness "
    "FROM session_events WHERE session_id = '{sid}' AND seq IS NOT NULL AND seq <= {base} "
    "AND seq + {offset} <= {target}"
)
LAST_SEQ_SQL = (
    "UPDATE sessions SET last_seq = (SELECT MAX(seq) FROM session_events WHERE session_id = '{sid}') "
    "WHERE id = '{sid}'"
)


def run_sql(database_url: str, statements: list[str]) -> None:
    if database_url.startswith("sqlite"):
        path = database_url.split("///", 1)[1]
        with contextlib.closing(sqlite3.connect(path, timeout=60)) as conn, conn:
            for sql in statements:
                conn.execute(sql)
        return
    import asyncpg

    async def run() -> None:
        conn = await asyncpg.connect(_asyncpg_dsn(database_url))
        try:
            async with conn.transaction():
                for sql in statements:
                    await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(run())


def max_seq(database_url: str, session_id: str) -> int:
    sql = f"SELECT MAX(seq) FROM session_events WHERE session_id = '{session_id}'"
    if database_url.startswith("sqlite"):
        with contextlib.closing(sqlite3.connect(database_url.split("///", 1)[1], timeout=60)) as conn:
            return int(conn.execute(sql).fetchone()[0])
    import asyncpg

    async def run() -> int:
        conn = await asyncpg.connect(_asyncpg_dsn(database_url))
        try:
            return int(await conn.fetchval(sql))
        finally:
            await conn.close()

    return asyncio.run(run())


def grow_by_copies(database_url: str, session_id: str, base: int, target: int) -> None:
    """Copy the first ``base`` events after the log's end until it holds ``target`` events."""
    current = max_seq(database_url, session_id)
    statements = []
    offset = current
    while offset < target:
        statements.append(COPY_SQL.format(offset=offset, sid=session_id, base=base, target=target))
        offset += base
    statements.append(LAST_SEQ_SQL.format(sid=session_id))
    run_sql(database_url, statements)
    if not database_url.startswith("sqlite"):
        # A log built over minutes has been analysed by autovacuum meanwhile; copies made in one
        # transaction have not (the planner would still see a 1k-row table).
        run_sql(database_url, ["ANALYZE session_events", "ANALYZE sessions"])


def first_frame_ms(base_url: str, session_id: str, after_id: str) -> float:
    headers = {**HEADERS, "last-event-id": after_id}
    with httpx.Client(headers=headers, timeout=httpx.Timeout(60, connect=10)) as client:
        start = time.perf_counter()
        with client.stream("GET", f"{base_url}/v1/sessions/{session_id}/events/stream") as response:
            for _ in frames(response.iter_lines()):
                return (time.perf_counter() - start) * 1000
    raise RuntimeError("the stream ended before its first frame")


def settle(pid: int) -> None:
    """Wait until the server is idle again: a replay closed after its first frame leaves the server
    reading and sending the rest of the backlog until it notices (at 50k events, pages of 1,000),
    which would run into the next replay's first frame."""
    for _ in range(100):
        before = cpu_seconds(pid)
        time.sleep(0.1)
        if cpu_seconds(pid) - before <= 0.01:  # a clock tick: idle polls only
            return


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    log_arguments(parser)
    parser.add_argument("--repeats", type=int, default=9, help="replays per size")
    args = parser.parse_args()
    sizes = sizes_of(args)
    print(header("bench_replay_first: replay's first frame by log size (copied rows)"), flush=True)
    lines = [
        "| events | first frame ms, median [min-max] | load average | target ≤ 50 ms at 50k |",
        "|---|---|---|---|",
    ]
    with (
        tempfile.TemporaryDirectory() as tmp,
        database_url(args.database, Path(tmp)) as url,
        MasServer(Path(tmp), url, label="replay-first") as server,
    ):
        log = LoggedSession(server.url)
        try:
            print(f"building the log to {sizes[0]} events through the API...", file=sys.stderr, flush=True)
            log.grow_to(sizes[0], args.calls)
            base = max_seq(url, log.session_id)
            first_id = log.first_event_id()
        finally:
            log.close()
        sid = log.session_id
        for size in sizes:
            if size > base:
                grow_by_copies(url, sid, base, size)
            events = max_seq(url, sid)
            first_frame_ms(server.url, sid, first_id)  # unmeasured: warms the path
            settle(server.pid)
            load = load_average()
            values = []
            for _ in range(args.repeats):
                settle(server.pid)
                values.append(first_frame_ms(server.url, sid, first_id))
            verdict = "" if size < 50_000 else ("met" if median(values) <= TARGET_MS else "MISSED")
            lines.append(f"| {events} | {median(values):.1f} [{spread(values)}] | {load:.1f} | {verdict} |")
            print(f"  measured at {events} events", file=sys.stderr, flush=True)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
