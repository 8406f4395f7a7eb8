"""The worker's ledger gives exactly what a full read of the log gives, step after step.

Three levels: a property over generated logs (every prefix of a log folded event by event equals
`state.analyse` and `context.build_messages` over that prefix), the check a new claim makes
before it trusts a kept ledger (against a real log), and the real worker taking a session's
ledger up again from one claim to the next. Beyond these, every test server of the suite runs
with `ledger_verify` on, so each step of every loop test compares the ledger with a rebuild from
the full log (`tests/conftest.py` fails a test during which a mismatch was found).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, cast

import anthropic
from hypothesis import given, settings
from hypothesis import strategies as st

from app.agent_loop import ledger as ledger_module
from app.agent_loop.context import build_messages
from app.agent_loop.ledger import Ledger, Ledgers
from app.agent_loop.state import analyse
from app.events import service as events
from app.events.types import EventRecord
from app.sessions import service as sessions
from app.worker.service import Worker
from tests.support.factories import make_session_async
from tests.support.loop import TIMEOUT, log, new_session, texts, turn
from tests.support.server import ServerThread
from tests.support.turns import InProcessWorker

Record = dict[str, Any]
OPS = (
    "user",
    "system",
    "thread",
    "start",
    "end",
    "end",
    "failed_end",
    "tool_use",
    "tool_use",
    "result",
    "result",
    "confirmation",
    "retrying",
    "exhausted",
    "compaction",
    "status",
    "define_outcome",
    "verdict",
)
USE_TYPES = ("agent.tool_use", "agent.custom_tool_use", "agent.mcp_tool_use")
RESULT_TYPES = (
    ("agent.tool_result", "tool_use_id"),
    ("user.custom_tool_result", "custom_tool_use_id"),
    ("user.tool_result", "tool_use_id"),
    ("agent.mcp_tool_result", "mcp_tool_use_id"),
)


class LogBuilder:
    """Turns a list of (operation, number) picks into a log of loop records: well-formed enough
    to resemble a session, odd enough to reach the corners (an end for no start or an old one,
    an empty response, a server tool, a result for an unknown call, a thread message mid-request)."""

    def __init__(self) -> None:
        self.log: list[EventRecord] = []
        self.starts: list[str] = []
        self.uses: list[str] = []

    def _id(self) -> str:
        return f"sevt_{len(self.log):04d}"

    def _pick(self, values: list[str], n: int, other: str | None = "sevt_unknown") -> str | None:
        return values[-1 - n % len(values)] if values and n % 7 else other

    def add(self, op: str, n: int) -> None:
        event: Record = {"id": self._id(), "processed_at": "2026-11-30T00:00:00.000Z"}
        if op == "start":
            event |= {"type": "span.model_request_start"}
            self.starts.append(event["id"])
        elif op in ("end", "failed_end"):
            event |= {"type": "span.model_request_end", "model_request_start_id": self._pick(self.starts, n)}
            if op == "end":
                content = [] if n % 5 == 0 else [{"type": "text", "text": f"answer {n}"}]
                event["model_usage"] = {"input_tokens": n * 1000, "output_tokens": 10}
                event["harness"] = {"content": content, "stop_reason": "tool_use" if n % 2 else "end_turn"}
        elif op == "tool_use":
            event |= {"type": USE_TYPES[n % 3], "name": "bash", "input": {}}
            harness: Record = {
                "tool_use_id": f"toolu_{n}",
                "request": self._pick(self.starts, n // 3, other=None),
            }
            event["evaluated_permission"] = ("allow", "ask", "deny")[n % 3]
            if n % 11 == 0:
                harness["server"] = True
            event["harness"] = harness
            self.uses.append(event["id"])
        elif op == "result":
            kind, key = RESULT_TYPES[n % 4]
            event |= {
                "type": kind,
                key: self._pick(self.uses, n),
                "content": [{"type": "text", "text": "out"}],
            }
            if n % 3 == 0:
                event["is_error"] = True
        elif op == "confirmation":
            event |= {"type": "user.tool_confirmation", "tool_use_id": self._pick(self.uses, n)}
            event["result"] = "allow" if n % 2 else "deny"
        else:
            event |= other_event(op, n)
        # Odd on purpose (a start id of None, an error without its message): typed as the log's.
        self.log.append(cast(EventRecord, event))


def other_event(op: str, n: int) -> Record:
    """Inputs, errors, compactions, statuses and outcome events (they refer to no other event)."""
    text = [{"type": "text", "text": f"{op} {n}"}]
    if op in ("user", "system"):
        return {"type": f"{op}.message", "content": text}
    if op == "thread":
        return {
            "type": "agent.thread_message_received",
            "content": text,
            "from_agent_name": "helper",
            "from_session_thread_id": f"sthr_{n}",
        }
    if op in ("retrying", "exhausted"):
        return {"type": "session.error", "error": {"type": "x", "retry_status": {"type": op}}}
    if op == "compaction":
        return {"type": "agent.thread_context_compacted", "harness": {"summary": f"summary {n}"}}
    if op == "define_outcome":
        rubric = {"type": "text", "content": "all tests pass"}
        return {
            "type": "user.define_outcome",
            "outcome_id": f"outc_{n % 3}",
            "description": "do",
            "rubric": rubric,
        }
    if op == "verdict":
        result = ("needs_revision", "max_iterations_reached", "satisfied", "interrupted")[n % 4]
        end = {"type": "span.outcome_evaluation_end", "outcome_id": f"outc_{n % 3}", "iteration": n}
        return {**end, "result": result, "explanation": f"verdict {n}"}
    return {"type": ("session.status_running", "session.status_idle")[n % 2]}


picks = st.lists(st.tuples(st.sampled_from(OPS), st.integers(0, 60)), max_size=70)


@settings(max_examples=400, deadline=None)
@given(picks)
def test_the_ledger_equals_a_full_analysis_after_every_event(ops: list[tuple[str, int]]) -> None:
    built = LogBuilder()
    for op, n in ops:
        built.add(op, n)
    ledger = Ledger("sesn_property")
    retries = analyse(built.log).retries
    for seq, event in enumerate(built.log, start=1):
        ledger.extend([(seq, event)])
        prefix = built.log[:seq]
        assert ledger.state() == analyse(prefix), f"after {[e['type'] for e in prefix]}"
        assert build_messages(ledger.window) == build_messages(prefix)
        # The failure path's count: the fold carried over the rest without folding it in.
        assert ledger.fold.retries_after(built.log[seq:]) == retries
    assert ledger.history == built.log and ledger.last_seq == len(built.log)


def test_a_compacted_log_leaves_the_events_before_its_window_out_of_the_messages() -> None:
    built = LogBuilder()
    for op, n in [("user", 1), ("start", 0), ("end", 1), ("user", 2), ("start", 0), ("end", 3)]:
        built.add(op, n)
    for op, n in [("user", 4), ("compaction", 1), ("start", 0), ("end", 5)]:
        built.add(op, n)
    ledger = Ledger("sesn_window")
    ledger.extend(enumerate(built.log, start=1))
    # From the last answered request before the compaction: the message sent after it is kept.
    assert ledger.window == built.log[5:]
    assert build_messages(ledger.window) == build_messages(built.log)


def test_the_ledgers_kept_are_the_most_recently_run() -> None:
    kept = Ledgers(2)
    for name in ("a", "b", "c"):
        kept.keep(Ledger(name))
    assert kept.take("a") is None
    b = kept.take("b")
    assert b is not None and b.session_id == "b"
    kept.keep(b)
    kept.keep(Ledger("d"))  # drops c, the least recently run
    assert kept.take("c") is None and kept.take("b") is b and len(kept) == 1
    none = Ledgers(0)
    none.keep(Ledger("a"))
    assert len(none) == 0


# --- against a real log ---------------------------------------------------------------------


async def test_a_kept_ledger_is_trusted_only_while_the_log_still_holds_what_it_read(
    manual_async_client: anthropic.AsyncAnthropic, producer: InProcessWorker
) -> None:
    session = await make_session_async(manual_async_client)
    await producer.append(
        session.id, [{"type": "session.status_running"}, {"type": "span.model_request_start"}]
    )

    async def read_into(ledger: Ledger) -> bool:
        async with producer.database.unit_of_work() as db:
            row = await sessions.load(db, session.id)
            ok = await ledger.matches(db, row)
            ledger.extend(await events.records_after(db, session.id, ledger.last_seq))
            return ok

    ledger = Ledger(session.id)
    assert await producer.call(lambda: read_into(ledger))
    assert [e["type"] for e in ledger.history] == ["session.status_running", "span.model_request_start"]
    # Appended by someone else (a client, a thread, another worker) while it was kept: still true,
    # and only the new event is read.
    await producer.append(session.id, [{"type": "session.status_idle", "stop_reason": {"type": "end_turn"}}])
    assert await producer.call(lambda: read_into(ledger))
    assert [e["type"] for e in ledger.history][-1] == "session.status_idle" and len(ledger.history) == 3

    wrong = Ledger(session.id)
    wrong.extend([(1, {**ledger.history[0], "id": "sevt_elsewhere"})])
    assert not await producer.call(lambda: read_into(wrong))
    ahead = Ledger(session.id)
    ahead.extend([(4, ledger.history[0].copy())])  # read further than the log goes
    assert not await producer.call(lambda: read_into(ahead))


async def test_verify_mode_finds_a_ledger_that_differs_from_the_log_and_rebuilds_it(
    manual_async_client: anthropic.AsyncAnthropic, producer: InProcessWorker
) -> None:
    session = await make_session_async(manual_async_client)
    await producer.append(session.id, [{"type": "user.message", "content": [{"type": "text", "text": "hi"}]}])
    ledger = Ledger(session.id)

    async def read() -> None:
        async with producer.database.read() as db:
            ledger.extend(await events.records_after(db, session.id, 0))

    await producer.call(read)
    stray: EventRecord = {"id": "sevt_stray", "type": "span.model_request_start", "processed_at": "x"}
    ledger.extend([(ledger.last_seq, stray)])  # a fold fed something the log does not hold
    before = len(ledger_module.MISMATCHES)

    async def verify(kept: Ledger) -> Ledger:
        async with producer.database.read() as db:
            return await kept.verify(db)

    rebuilt = await producer.call(lambda: verify(ledger))
    found = ledger_module.MISMATCHES[before:]
    del ledger_module.MISMATCHES[before:]  # expected here: not a failure of this test
    assert len(found) == 1 and "ledger mismatch" in found[0]
    assert rebuilt is not ledger and [e["type"] for e in rebuilt.history] == ["user.message"]
    assert rebuilt.state().open_request is None and ledger.state().open_request == stray
    assert await producer.call(lambda: verify(rebuilt)) is rebuilt


# --- the real worker ------------------------------------------------------------------------


def _worker(server: ServerThread) -> Worker:
    worker: Worker = server.app.state.worker
    return worker


async def _kept(worker: Worker, session_id: str) -> Ledger:
    """The session's ledger once its run has ended and handed it back (bounded wait)."""
    deadline = time.monotonic() + TIMEOUT
    while True:
        found = worker.ledgers.peek(session_id)
        if found is not None and session_id not in worker.running_sessions():
            return found
        assert time.monotonic() < deadline, "the worker kept no ledger for the session"
        await asyncio.sleep(0.02)


async def test_the_next_claim_takes_up_the_ledger_and_a_stale_one_is_rebuilt(
    loop: anthropic.AsyncAnthropic, loop_server: ServerThread
) -> None:
    worker = _worker(loop_server)
    session_id = await new_session(loop)
    await turn(loop, session_id, '/say one\n/tool bash {"command": "echo one"}')
    first = await _kept(worker, session_id)
    await turn(loop, session_id, "/say two")
    second = await _kept(worker, session_id)
    listed = await log(loop, session_id)
    assert second is first, "the second claim read the log anew"
    assert [e["id"] for e in second.history] == [e.id for e in listed]

    second.last_id = "sevt_not_in_this_log"  # what it read no longer matches the log
    await turn(loop, session_id, "/say three")
    third = await _kept(worker, session_id)
    listed = await log(loop, session_id)
    assert third is not second
    assert [e["id"] for e in third.history] == [e.id for e in listed]
    assert texts(listed)[-1] == "three"
