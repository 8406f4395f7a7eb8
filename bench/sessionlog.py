"""Sessions with long, realistic event logs, built through the public API with the offline model.

A *build turn* is one user message that makes the offline model think, say a sentence and call
tools many times in parallel (the local sandbox runs them), then summarise the results:

    user.message, session.status_running, session.thread_status_running,
    span.model_request_start, agent.thinking, agent.message, N x agent.tool_use,
    span.model_request_end, N x agent.tool_result, span.model_request_start, agent.message,
    span.model_request_end, session.thread_status_idle, session.usage, session.status_idle

so 2N + 13 events per turn, each written by the real agent loop (the same rows a real session
has: private `_content` on span ends, tool-use bookkeeping, usage, compaction when the history
grows past `MAS_COMPACTION_THRESHOLD_TOKENS`). There is no faster public way to write agent
events: the API only accepts client events, and a row written into the database directly would
not survive the core rewrite (nor prove anything about it). Many calls per response keep the
number of turns, and so the build time, down (before the worker kept ledgers, each turn re-read
the whole log).

The calls are a coding agent's mix: mostly `read` of a few source files (some with a line
range, some of a file that does not exist: error results), some `write`, and one `bash` call in
twenty (short varied commands, some failing). Until 2026-11-30 every call was `bash`; on a host
a bash call costs the local sandbox 100-200 ms (it scans the host's whole process table twice
for runaway processes), so the sandbox, not mas, set the build's pace: 25 minutes to 50k
events. The events are the same kinds and about the same sizes either way.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
from harness import HEADERS, agent_body, api, checked, environment_body, message

# Tool calls with short, varied output, like a coding agent's: listings, test output, failures.
COMMANDS = (
    "pwd",
    "seq 1 6",
    "printf 'tests/test_api.py::test_create PASSED\\ntests/test_api.py::test_list FAILED\\n'",
    "echo 'def handler(event):' && echo '    return event[\"id\"]'",
    "true",
    "ls -a",
    "printf 'error: expected 3 items, got 2\\n' && false",
    "printf '%s\\n' src/app.py src/models.py src/views.py tests/test_api.py",
)
TURN_EVENTS_FIXED = 13  # the events of a build turn besides its N tool uses and N results
SOURCES = 8  # src/m0.py .. src/m7.py, written by the first build turn
BASH_EVERY = 20


def log_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of a benchmark that grows a log to each of several sizes (read back with
    `sizes_of`): the sizes, the database, the build turns' calls."""
    parser.add_argument("--sizes", default="1000,10000,50000", help="log sizes, ascending")
    parser.add_argument("--database", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--calls", type=int, default=100, help="parallel tool calls per build turn")


def sizes_of(args: argparse.Namespace) -> list[int]:
    return sorted(int(s) for s in args.sizes.split(","))


def _source(module: int, turn: int) -> str:
    return (
        f'"""Module m{module}, as of task {turn}."""\n\n'
        f"def handler(event):\n    return event['id']\n\n\n"
        f"def test_handler():\n    assert handler({{'id': {module}}}) == {module}\n"
    )


def build_call(turn: int, i: int) -> tuple[str, dict[str, Any]]:
    """The i-th call of a build turn (the first turn writes the files the later ones read)."""
    k = turn + i
    module = k % SOURCES
    if turn == 0 or k % 7 == 3:
        return "write", {"file_path": f"src/m{module}.py", "content": _source(module, turn)}
    if k % BASH_EVERY == 0:
        return "bash", {"command": COMMANDS[(k // BASH_EVERY) % len(COMMANDS)]}
    if k % 11 == 5:
        return "read", {"file_path": f"src/missing_{module}.py"}
    if k % 3 == 1:
        return "read", {"file_path": f"src/m{module}.py", "view_range": [3, 4]}
    return "read", {"file_path": f"src/m{module}.py"}


def build_turn_text(turn: int, calls: int) -> str:
    lines = [
        f"Task {turn}: tests/test_api.py::test_list fails after the refactor of module m{turn}. "
        "Find out why, fix it, and tell me what you changed.",
        "/think",
        f"/say I'll run the checks for module m{turn} and read the failing test's output first.",
    ]
    for i in range(calls):
        name, inp = build_call(turn, i)
        lines.append(f"/tool {name} " + json.dumps(inp))
    return "\n".join(lines)


class TurnFailed(RuntimeError):
    pass


@dataclass
class Frame:
    event: str
    data: str
    id: str | None = None


def frames(lines: Iterator[str]) -> Iterator[Frame]:
    """SSE frames (comments skipped) from a line iterator."""
    event, data, ident = "", "", None
    for line in lines:
        if not line:
            if event or data:
                yield Frame(event, data, ident)
            event, data, ident = "", "", None
        elif line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:"):
            data = line[5:].strip()
        elif line.startswith("id:"):
            ident = line[3:].strip()


@dataclass
class LoggedSession:
    """A session and one stream that follows it (stream, then send: every turn is seen once)."""

    base_url: str
    session_id: str = ""
    events: int = 0
    turns: int = 0
    http: httpx.Client = field(init=False)
    _stream_client: httpx.Client = field(init=False)
    _frames: Iterator[Frame] = field(init=False)
    _close: Any = field(init=False)

    def __post_init__(self) -> None:
        self.http = api(self.base_url)
        agent = checked(self.http.post("/v1/agents", json=agent_body("bench-long-log")))
        env = checked(self.http.post("/v1/environments", json=environment_body()))
        created = self.http.post("/v1/sessions", json={"agent": agent["id"], "environment_id": env["id"]})
        self.session_id = checked(created)["id"]
        self._stream_client = httpx.Client(headers=HEADERS, timeout=httpx.Timeout(300, connect=10))
        context = self._stream_client.stream(
            "GET", f"{self.base_url}/v1/sessions/{self.session_id}/events/stream"
        )
        response = context.__enter__()
        self._close = context.__exit__
        self._frames = frames(response.iter_lines())

    def close(self) -> None:
        self._close(None, None, None)
        self._stream_client.close()
        self.http.close()

    def turn(self, text: str) -> float:
        """Sends a user message and waits on the stream for the turn's idle; returns seconds."""
        start = time.perf_counter()
        checked(self.http.post(f"/v1/sessions/{self.session_id}/events", json={"events": [message(text)]}))
        for frame in self._frames:
            self.events += 1
            if frame.event == "session.error":
                raise TurnFailed(frame.data)
            if frame.event == "session.status_idle":
                elapsed = time.perf_counter() - start
                stop = json.loads(frame.data).get("stop_reason", {}).get("type")
                if stop != "end_turn":
                    raise TurnFailed(f"turn ended with {stop}: {frame.data}")
                return elapsed
        raise TurnFailed("the stream ended mid-turn")

    def grow_to(self, target: int, calls: int) -> float:
        """Build turns until the log holds at least `target` events; returns seconds taken."""
        start = time.perf_counter()
        next_report = self.events + max(1000, (target - self.events) // 10)
        while self.events < target:
            missing = target - self.events
            n = max(1, min(calls, (missing - TURN_EVENTS_FIXED) // 2))
            self.turn(build_turn_text(self.turns, n))
            self.turns += 1
            if self.events >= next_report:
                rate = self.events / max(time.perf_counter() - start, 1e-9)
                print(f"  ... {self.events} events ({rate:.0f}/s this build)", file=sys.stderr, flush=True)
                next_report += max(1000, target // 10)
        return time.perf_counter() - start

    def first_event_id(self) -> str:
        page = checked(self.http.get(f"/v1/sessions/{self.session_id}/events", params={"limit": 1}))
        return str(page["data"][0]["id"])

    def last_event_id(self) -> str:
        params: dict[str, str | int] = {"limit": 1, "order": "desc"}
        page = checked(self.http.get(f"/v1/sessions/{self.session_id}/events", params=params))
        return str(page["data"][0]["id"])
