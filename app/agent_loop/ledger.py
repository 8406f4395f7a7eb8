"""A session's log as the loop needs it, kept by the worker between steps and between claims.

Deciding a step used to re-read and re-analyse the whole log (`state.analyse`,
`context.build_messages`), so one more turn cost time in proportion to the log's length. A
`Ledger` is fed only the events appended after the last position it saw and folds each into the
turn state as it arrives; the next request's messages are built from the *window* of the log that
can still reach the model (from just before the latest compaction). The log is append-only and
positions are committed in order (`events.repository.allocate_seqs`), so reading `seq > last`
sees exactly what is new, whoever appended it (this worker, a client answering a tool call,
another thread, another worker that held the lease in between).

A worker keeps the ledgers of the sessions it ran last (`Ledgers`, `MAS_WORKER_LEDGERS`). A
ledger taken up again for a new claim is checked against the log first (the log must still hold
the event it saw last at that position); one that does not match is dropped and rebuilt from the
log. With `MAS_LEDGER_VERIFY` every step also rebuilds the state from the full log and compares
(the test-suite runs so: see `tests/agent_loop/test_ledger.py`).
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Iterable

from sqlalchemy.ext.asyncio import AsyncSession

from app.agent_loop import grader
from app.agent_loop.context import RESULT_KEYS, THREAD_MESSAGE, TOOL_USE_TYPES, build_messages
from app.agent_loop.state import TurnState, analyse, retrying
from app.db.models import Session
from app.events import service as events
from app.events.types import EventRecord, harness_of

log = logging.getLogger(__name__)

COMPACTED = "agent.thread_context_compacted"
# Mismatches found in verify mode (tests assert there are none); the ledger is rebuilt meanwhile.
MISMATCHES: list[str] = []


class TurnFold:
    """`state.analyse` as a left fold: the same `TurnState`, one event at a time."""

    def __init__(self) -> None:
        self.state = TurnState()
        self._open: list[EventRecord] = []  # requests started after the latest response, not ended
        self._uses: dict[str | None, list[EventRecord]] = {}  # tool uses by the request that made them
        self._count = 0
        self._positions: dict[str, int] = {}
        self._last_thread_message = -1
        self._start: str | None = None  # the latest response's request start id
        self._start_seen = True

    def add(self, event: EventRecord) -> None:
        position, self._count = self._count, self._count + 1
        self._positions.setdefault(str(event["id"]), position)
        kind = event["type"]
        state = self.state
        if kind == "span.model_request_start":
            state.requests_since_input += 1
            self._open.append(event)
        elif kind == "span.model_request_end":
            ended = str(event.get("model_request_start_id"))
            self._open = [s for s in self._open if s["id"] != ended]
            if harness_of(event).get("content") is not None:
                self._respond(event)
                return
        elif kind in TOOL_USE_TYPES and not harness_of(event).get("server"):
            self._uses.setdefault(harness_of(event).get("request"), []).append(event)
        elif kind in RESULT_KEYS:
            state.results[str(event.get(RESULT_KEYS[kind]))] = event
        elif kind == "user.tool_confirmation":
            state.confirmations[str(event.get("tool_use_id"))] = event
        self._after_response(event, position)

    def _respond(self, end: EventRecord) -> None:
        state = self.state
        state.last_response = end
        self._open = []
        self._start = end.get("model_request_start_id")
        start = self._positions.get(str(self._start)) if self._start is not None else None
        self._start_seen = self._start is None or start is not None
        # A message from another thread that arrived after the request started was not seen.
        state.input_after_response = self._last_thread_message >= (start if start is not None else 0) and (
            self._start_seen
        )
        state.retries = 0

    def _after_response(self, event: EventRecord, position: int) -> None:
        state = self.state
        kind = event["type"]
        self._start_seen = self._start_seen or event["id"] == self._start
        if kind in (THREAD_MESSAGE, grader.DEFINE):  # may arrive while a request runs
            self._last_thread_message = position
            state.requests_since_input = 0
            state.input_after_response = state.input_after_response or self._start_seen
        elif kind == "user.message" or grader.is_agent_input(event):
            state.requests_since_input = 0
            state.input_after_response = True
            state.retries = 0
        elif retrying(event):
            state.retries += 1

    def retries_after(self, more: Iterable[EventRecord]) -> int:
        """`retries` as it would be with `more` folded in, leaving the fold as it is (`more` may
        hold what the caller's transaction wrote and has not committed)."""
        retries = self.state.retries
        for event in more:
            kind = event["type"]
            answered = kind == "span.model_request_end" and harness_of(event).get("content") is not None
            if answered or kind == "user.message" or grader.is_agent_input(event):
                retries = 0
            elif retrying(event):
                retries += 1
        return retries

    def snapshot(self) -> TurnState:
        """The state now (the dicts are shared: a step reads them, never changes them)."""
        state = self.state
        response = state.last_response
        uses = [] if response is None else list(self._uses.get(response.get("model_request_start_id"), []))
        return TurnState(
            open_request=self._open[-1] if self._open else None,
            last_response=response,
            tool_uses=uses,
            results=state.results,
            confirmations=state.confirmations,
            input_after_response=state.input_after_response,
            retries=state.retries,
            requests_since_input=state.requests_since_input,
        )


class Ledger:
    """One session's log read so far, its turn state, and the window the model can still see."""

    def __init__(self, session_id: str) -> None:
        self.session_id = session_id
        self.history: list[EventRecord] = []
        self.last_seq = 0
        self.last_id: str | None = None
        self.fold = TurnFold()
        self._window_start = 0

    def extend(self, rows: Iterable[tuple[int, EventRecord]]) -> None:
        for seq, record in rows:
            if record["type"] == COMPACTED:
                self._window_start = self._before_unanswered(len(self.history))
            self.history.append(record)
            self.fold.add(record)
            self.last_seq, self.last_id = seq, str(record["id"])

    def _before_unanswered(self, compaction: int) -> int:
        """Where `context._unanswered` stops scanning back from a compaction at `compaction`: the
        events before that point never reach the model again."""
        for i in range(compaction - 1, -1, -1):
            event = self.history[i]
            answered = event["type"] == "span.model_request_end" and harness_of(event).get("content")
            if event["type"] == COMPACTED or answered:
                return i
        return 0

    @property
    def window(self) -> list[EventRecord]:
        """The log from where the model's context starts: `build_messages(window)` equals
        `build_messages(history)`."""
        return self.history[self._window_start :]

    def state(self) -> TurnState:
        return self.fold.snapshot()

    async def matches(self, db: AsyncSession, row: Session) -> bool:
        """Whether the log still holds what this ledger read (a new claim checks before it trusts
        it): as long as ever, with the event it saw last at that position."""
        if self.last_seq == 0:
            return True
        if row.last_seq < self.last_seq:
            return False
        return await events.id_at(db, row.id, self.last_seq) == self.last_id

    async def verify(self, db: AsyncSession) -> Ledger:
        """Verify mode: the state rebuilt from the full log must equal this ledger's. Returns the
        ledger to go on with (a rebuilt one after a mismatch, which is logged and recorded)."""
        full = await events.records_after(db, self.session_id, 0)
        history = [record for _, record in full]
        problems = []
        if history != self.history:
            problems.append(f"history differs ({len(history)} events in the log, {len(self.history)} read)")
        elif analyse(history) != self.state():
            problems.append(f"turn state differs: {analyse(history)!r} != {self.state()!r}")
        elif build_messages(history) != build_messages(self.window):
            problems.append("messages differ")
        if not problems:
            return self
        message = f"session {self.session_id}: ledger mismatch at seq {self.last_seq}: {problems[0]}"
        log.error(message)
        MISMATCHES.append(message)
        rebuilt = Ledger(self.session_id)
        rebuilt.extend(full)
        return rebuilt


class Ledgers:
    """The ledgers of the sessions this worker ran last, least recently used dropped first."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._kept: OrderedDict[str, Ledger] = OrderedDict()

    def take(self, session_id: str) -> Ledger | None:
        """The kept ledger of a session (to be checked with `Ledger.matches` before use)."""
        return self._kept.pop(session_id, None)

    def peek(self, session_id: str) -> Ledger | None:
        """The kept ledger of a session, left in place (for inspection)."""
        return self._kept.get(session_id)

    def keep(self, ledger: Ledger) -> None:
        if self.capacity <= 0:
            return
        self._kept[ledger.session_id] = ledger
        self._kept.move_to_end(ledger.session_id)
        while len(self._kept) > self.capacity:
            self._kept.popitem(last=False)

    def __len__(self) -> int:
        return len(self._kept)
