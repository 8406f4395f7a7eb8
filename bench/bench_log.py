"""Cost of a session's log size: one more turn, the first page, a full read, a replay.

    .venv/bin/python bench/bench_log.py [--sizes 1000,10000,50000] [--database sqlite|postgres]

One `mas serve` (default topology: embedded worker, offline model, local sandbox) and one session
whose log grows through the API (see `sessionlog.py`) to each size in turn. At each size:

* one more text turn: send a plain `user.message` on an open stream, wait for
  `session.status_idle` (wall time, and the server's CPU time for the turn);
* events.list first page as the SDK asks for it (no `limit`: the server's default page), and the
  newest 100 (`order=desc&limit=100`);
* a full read: every page, following `next_page`, at the maximum page size;
* replay: a new stream with `Last-Event-ID` = the first event, so everything after it is replayed
  (the same catch-up a first connection does from the stream watermark): time to the first frame,
  time to the last event, server CPU; and the peak RSS growth of one replay in a fresh
  `mas serve` on the same database (VmHWM reset before).

The server runs with `MAS_COMPACTION_THRESHOLD_TOKENS=20000` (`--compaction-tokens`), so the
model request stays small and about the same size at every log size: the turn's figure is then
the log's cost, not the conversation's. One unmeasured turn per size absorbs a due compaction.

Ratios are to the same measure at the smallest size, in the same run. Targets (issue 10, on a
2-core machine): one more turn at 50k <= 1.5x at 1k; replay first frame at 50k <= 50 ms.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from harness import (
    HEADERS,
    MasServer,
    api,
    checked,
    cpu_seconds,
    database_url,
    dump_json,
    header,
    load_average,
    median,
    memory_kib,
    num,
    reset_peak_rss,
    spread,
)
from profiling import Profiler
from sessionlog import LoggedSession, frames, log_arguments, sizes_of

TURN_TEXT = "Thanks. Now write a two-sentence summary of the change for the changelog."


@dataclass
class Sample:
    values: list[float] = field(default_factory=list)

    def add(self, value: float) -> None:
        self.values.append(value)

    @property
    def median(self) -> float:
        return median(self.values)


@dataclass
class SizeResult:
    size: int
    build_s: float
    turn_ms: Sample = field(default_factory=Sample)
    turn_cpu_ms: Sample = field(default_factory=Sample)
    first_page_ms: Sample = field(default_factory=Sample)
    newest_ms: Sample = field(default_factory=Sample)
    full_read_ms: Sample = field(default_factory=Sample)
    replay_first_ms: Sample = field(default_factory=Sample)
    replay_all_ms: Sample = field(default_factory=Sample)
    replay_peak_mib: Sample = field(default_factory=Sample)
    first_page_cpu_ms: Sample = field(default_factory=Sample)
    full_read_cpu_ms: Sample = field(default_factory=Sample)
    replay_cpu_ms: Sample = field(default_factory=Sample)
    rss_mib: float = 0.0
    page_events: int = 0
    load: list[float] = field(default_factory=list)


def ms_since(start: float) -> float:
    return (time.perf_counter() - start) * 1000


def full_read(http: httpx.Client, session_id: str) -> int:
    count, page = 0, None
    while True:
        params: dict[str, Any] = {"limit": 1000}
        if page:
            params["page"] = page
        body = checked(http.get(f"/v1/sessions/{session_id}/events", params=params))
        count += len(body["data"])
        page = body.get("next_page")
        if not page:
            return count


def replay(server: MasServer, session_id: str, after_id: str, last_id: str) -> tuple[float, float, float]:
    """(ms to the first frame, ms to the last event, peak RSS growth in MiB) of one replay."""
    reset_peak_rss(server.pid)
    before = memory_kib(server.pid)["VmRSS"]
    headers = {**HEADERS, "last-event-id": after_id}
    first = float("nan")
    # The client is built before the clock starts: building one (httpx loads its CA bundle) took
    # ~21 ms here, client-side work that preceded the request. The connection is still timed.
    with httpx.Client(headers=headers, timeout=httpx.Timeout(300, connect=10)) as client:
        start = time.perf_counter()
        with client.stream("GET", f"{server.url}/v1/sessions/{session_id}/events/stream") as response:
            for frame in frames(response.iter_lines()):
                if first != first:  # nan: the first frame
                    first = ms_since(start)
                if frame.id == last_id:
                    break
        total = ms_since(start)
    peak = memory_kib(server.pid)["VmHWM"]
    return first, total, (peak - before) / 1024


def replay_memory(server: MasServer, session_id: str, first_id: str, last_id: str) -> float:
    """Peak RSS growth (MiB) of a replay in a fresh `mas serve` on the same database (no worker).
    In the long-running server the growth hides in memory freed by earlier turns (each of which
    read the whole log before the worker kept ledgers), so it is measured where nothing else has
    run yet; a one-event replay first takes imports and first-request costs out."""
    with api(server.url) as http:
        page = checked(http.get(f"/v1/sessions/{session_id}/events", params={"order": "desc", "limit": 2}))
    before_last = str(page["data"][1]["id"])
    env = {**server.env, "MAS_EMBEDDED_WORKER": "false", "MAS_AUTO_MIGRATE": "false"}
    with MasServer(server.workdir / "replay", server.database_url, env=env, label="replay") as fresh:
        replay(fresh, session_id, before_last, last_id)
        return replay(fresh, session_id, first_id, last_id)[2]


def measure(
    server: MasServer, log: LoggedSession, result: SizeResult, repeats: int, profiler: Profiler
) -> None:
    http, sid = log.http, log.session_id
    log.turn(TURN_TEXT)  # unmeasured: absorbs a compaction the build may have made due
    result.load.append(load_average())
    with profiler.phase(f"turn-{result.size}"):
        for _ in range(repeats):
            cpu = cpu_seconds(server.pid)
            result.turn_ms.add(log.turn(TURN_TEXT) * 1000)
            result.turn_cpu_ms.add((cpu_seconds(server.pid) - cpu) * 1000)
    with profiler.phase(f"events-list-{result.size}"):
        for _ in range(repeats * 2):
            cpu, start = cpu_seconds(server.pid), time.perf_counter()
            page = checked(http.get(f"/v1/sessions/{sid}/events"))
            result.first_page_ms.add(ms_since(start))
            result.first_page_cpu_ms.add((cpu_seconds(server.pid) - cpu) * 1000)
            result.page_events = len(page["data"])
            start = time.perf_counter()
            checked(http.get(f"/v1/sessions/{sid}/events", params={"order": "desc", "limit": 100}))
            result.newest_ms.add(ms_since(start))
    for _ in range(max(1, (repeats + 1) // 2)):
        cpu, start = cpu_seconds(server.pid), time.perf_counter()
        full_read(http, sid)
        result.full_read_ms.add(ms_since(start))
        result.full_read_cpu_ms.add((cpu_seconds(server.pid) - cpu) * 1000)
    first_id, last_id = log.first_event_id(), log.last_event_id()
    with profiler.phase(f"replay-{result.size}"):
        for _ in range(max(1, (repeats + 1) // 2)):
            cpu = cpu_seconds(server.pid)
            first, total, _ = replay(server, sid, first_id, last_id)
            result.replay_cpu_ms.add((cpu_seconds(server.pid) - cpu) * 1000)
            result.replay_first_ms.add(first)
            result.replay_all_ms.add(total)
    result.replay_peak_mib.add(replay_memory(server, sid, first_id, last_id))
    result.rss_mib = memory_kib(server.pid)["VmRSS"] / 1024
    result.load.append(load_average())


def ratio(value: float, base: float) -> str:
    return f"{value / base:.2f}x" if base > 0 else "-"


def report(results: list[SizeResult], database: str) -> str:
    base = results[0]
    rows: list[tuple[str, Callable[[SizeResult], Sample], str]] = [
        ("one more text turn, wall (ms)", lambda r: r.turn_ms, "at 50k <= 1.5x at 1k"),
        ("one more text turn, server CPU (ms)", lambda r: r.turn_cpu_ms, ""),
        ("events.list first page, default limit (ms)", lambda r: r.first_page_ms, ""),
        ("events.list first page, server CPU (ms)", lambda r: r.first_page_cpu_ms, ""),
        ("events.list newest 100, order=desc (ms)", lambda r: r.newest_ms, ""),
        ("full read, pages of 1000 (ms)", lambda r: r.full_read_ms, ""),
        ("full read, server CPU (ms)", lambda r: r.full_read_cpu_ms, ""),
        ("replay: first frame (ms)", lambda r: r.replay_first_ms, "<= 50 ms at 50k"),
        ("replay: whole backlog (ms)", lambda r: r.replay_all_ms, ""),
        ("replay: server CPU (ms)", lambda r: r.replay_cpu_ms, ""),
        ("replay: peak RSS growth of a fresh server (MiB)", lambda r: r.replay_peak_mib, ""),
    ]
    sizes = " | ".join(f"{r.size} events" for r in results)
    lines = [
        f"Log size ({database}); medians of repeats, [min-max], ratio to the {base.size}-event log",
        "",
        f"| measure | {sizes} | target |",
        "|---|" + "---|" * len(results) + "---|",
    ]
    for name, get, target in rows:
        cells = []
        for r in results:
            sample = get(r)
            cell = f"{num(sample.median)} [{spread(sample.values)}]"
            if r is not base:
                cell += f" {ratio(sample.median, get(base).median)}"
            cells.append(cell)
        lines.append(f"| {name} | {' | '.join(cells)} | {target} |")
    lines.append(f"| events in the first page | {' | '.join(str(r.page_events) for r in results)} | |")
    loads = " | ".join(f"{min(r.load):.1f}-{max(r.load):.1f}" if r.load else "-" for r in results)
    lines.append(f"| machine load average while measuring | {loads} | |")
    lines.append(f"| server RSS after (MiB) | {' | '.join(f'{r.rss_mib:.0f}' for r in results)} | |")
    lines.append(
        f"| build time from the previous size (s) | {' | '.join(f'{r.build_s:.0f}' for r in results)} | |"
    )
    last = results[-1]
    verdicts = [
        f"one more turn at {last.size}: "
        f"{last.turn_ms.median / base.turn_ms.median:.2f}x the turn at {base.size} "
        f"(target <= 1.5x: {'met' if last.turn_ms.median <= 1.5 * base.turn_ms.median else 'MISSED'})",
        f"replay first frame at {last.size}: {last.replay_first_ms.median:.0f} ms "
        f"(target <= 50 ms: {'met' if last.replay_first_ms.median <= 50 else 'MISSED'})",
    ]
    return "\n".join([*lines, "", *verdicts])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    log_arguments(parser)
    parser.add_argument(
        "--repeats", type=int, default=5, help="turns measured per size (reads: 2x, replays: /2)"
    )
    parser.add_argument(
        "--compaction-tokens",
        type=int,
        default=20_000,
        help="MAS_COMPACTION_THRESHOLD_TOKENS: keeps the model request the same small size at every log size",
    )
    parser.add_argument(
        "--profile", type=Path, help="record py-spy profiles of each phase into this directory"
    )
    parser.add_argument("--json", type=Path, help="also write the raw figures here")
    args = parser.parse_args()
    sizes = sizes_of(args)
    print(header("bench_log: the cost of a long session log"), flush=True)
    results: list[SizeResult] = []
    with tempfile.TemporaryDirectory() as tmp, database_url(args.database, Path(tmp)) as url:
        env = {"MAS_COMPACTION_THRESHOLD_TOKENS": str(args.compaction_tokens)}
        with MasServer(Path(tmp), url, env=env, label="log") as server:
            profiler = Profiler(args.profile, server.pid)
            log = LoggedSession(server.url)
            try:
                for size in sizes:
                    print(f"building the log to {size} events...", file=sys.stderr, flush=True)
                    result = SizeResult(size, log.grow_to(size, args.calls))
                    result.size = log.events
                    measure(server, log, result, args.repeats, profiler)
                    results.append(result)
                    print(f"  measured at {log.events} events", file=sys.stderr, flush=True)
            finally:
                log.close()
    print(report(results, args.database))
    print(profiler.summary())
    dump_json(args.json, [r.__dict__ for r in results])


if __name__ == "__main__":
    main()
