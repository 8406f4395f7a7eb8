"""Status transitions. Each writes the new status and the events that announce it in the
caller's transaction, so the status a client reads and the log never disagree."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from app.db.base import utcnow
from app.db.engine import after_commit
from app.db.models import Session
from app.db.session_json import UsageTotals
from app.events import service as events
from app.events.notifier import Notifier
from app.events.types import EventRecord, StopDetails, StopReason
from app.observability import tracing
from app.observability.metrics import TURNS, TURNS_STARTED
from app.sessions import repository, workflow_runs
from app.sessions.schemas import public_usage, rolled_up
from app.webhooks import service as webhooks

log = logging.getLogger(__name__)


def primary_thread_id(session_id: str) -> str:
    return "sthr_" + session_id.removeprefix("sesn_")


def thread_id_of(row: Session) -> str:
    """A child thread's row id is its thread id; a session's own thread is its primary thread."""
    return row.id if row.parent_session_id is not None else primary_thread_id(row.id)


def _thread(kind: str, row: Session) -> EventRecord:
    """A ``session.thread_*`` event of ``row``'s thread."""
    return {"type": kind, "session_thread_id": thread_id_of(row), "agent_name": row.agent.get("name", "")}


async def _announce(
    db: AsyncSession, notifier: Notifier, row: Session, batch: list[EventRecord]
) -> list[EventRecord]:
    """A session's status events go on its log. A child thread's log gets only its
    `session.thread_status_*` event, which is cross-posted to its session's log (the primary
    stream); a coordinator waiting on its threads is woken to look at them again."""
    if row.parent_session_id is None:
        return await events.append(db, notifier, row.id, batch)
    thread_events = [e for e in batch if e["type"].startswith("session.thread_status_")]
    own = await events.append(db, notifier, row.id, thread_events)
    parent = await repository.get(db, row.parent_session_id, for_update=True)
    if parent is not None:
        await events.append(db, notifier, parent.id, thread_events)
        settled = row.status in ("idle", "terminated")
        if settled and parent.status == "running":
            request_run(db, notifier, parent)
    return own


async def _webhook(db: AsyncSession, kind: str, row: Session) -> None:
    if row.parent_session_id is None:  # threads are reported through their session's events
        await webhooks.emit(db, kind, row.id)


def request_run(db: AsyncSession, notifier: Notifier, row: Session) -> None:
    """Mark the session runnable and wake a worker once this transaction commits."""
    now = utcnow()
    if row.wake_at is None or row.wake_at > now:
        row.wake_at = now
    parent = tracing.traceparent()
    if parent is not None:
        row.trace_parent = parent
    after_commit(db, notifier.wake)


def announce_interrupt(db: AsyncSession, notifier: Notifier, row: Session) -> None:
    """A `user.interrupt` is queued for the session (or thread): once this transaction commits, a
    step running it hears so at once, in any process (see `agent_loop.interrupts`)."""
    session_id = row.id
    after_commit(db, lambda: notifier.interrupt(session_id))


def _turn_started() -> None:
    TURNS_STARTED.inc()
    log.info("turn started")


def _count_turn_end(db: AsyncSession, row: Session, stop_reason: str) -> None:
    """A running session stops: one turn ended, timed from when it started running (metrics,
    once the transaction commits)."""
    if row.running_since is None:
        return
    seconds = (utcnow() - row.running_since).total_seconds()

    def record() -> None:
        TURNS.labels(stop_reason).observe(seconds)
        log.info("turn ended (%s) after %.1f s", stop_reason, seconds)

    after_commit(db, record)


def _stop_clock(row: Session) -> None:
    if row.running_since is not None:
        row.active_seconds += (utcnow() - row.running_since).total_seconds()
        row.running_since = None


async def start_running(db: AsyncSession, notifier: Notifier, row: Session) -> list[EventRecord]:
    if row.status == "idle":  # not a rescheduled turn going on
        after_commit(db, _turn_started)
    row.status = "running"
    row.running_since = row.running_since or utcnow()
    row.updated_at = utcnow()
    await _webhook(db, "session.status_run_started", row)
    announced = await _announce(
        db,
        notifier,
        row,
        [{"type": "session.status_running"}, _thread("session.thread_status_running", row)],
    )
    if row.workflow_run_id is not None:
        await workflow_runs.thread_started(db, notifier, row)
    return announced


async def _session_usage(db: AsyncSession, row: Session) -> UsageTotals:
    """A session's usage with its threads' rolled in (a thread's idle shows no `session.usage`)."""
    if row.parent_session_id is not None or not row.agent.get("multiagent"):
        return row.usage
    return rolled_up(row.usage, [child.usage for child in await repository.children(db, row.id)])


async def go_idle(
    db: AsyncSession,
    notifier: Notifier,
    row: Session,
    stop_reason: StopReason,
    stop_details: StopDetails | None = None,
) -> list[EventRecord]:
    """thread idle -> session.usage -> session.status_idle, as the hosted service orders them.
    ``stop_details`` (a refusal's category and explanation) goes on both idle events."""
    _count_turn_end(db, row, str(stop_reason.get("type")))
    _stop_clock(row)
    row.status = "idle"
    row.updated_at = utcnow()
    batch: list[EventRecord] = [
        {**_thread("session.thread_status_idle", row), "stop_reason": stop_reason},
        {"type": "session.usage", "usage": public_usage(await _session_usage(db, row), row.active_seconds)},
        {"type": "session.status_idle", "stop_reason": stop_reason},
    ]
    if stop_details:
        batch[0]["stop_details"] = batch[2]["stop_details"] = stop_details
    await _webhook(db, "session.status_idled", row)
    if stop_reason.get("type") == "requires_action":
        await _webhook(db, "session.requires_action", row)
    announced = await _announce(db, notifier, row, batch)
    if row.workflow_run_id is not None:
        await workflow_runs.thread_stopped(db, notifier, row)
    return announced


async def reschedule(db: AsyncSession, notifier: Notifier, row: Session) -> list[EventRecord]:
    row.status = "rescheduling"
    row.updated_at = utcnow()
    await _webhook(db, "session.status_rescheduled", row)
    return await _announce(
        db,
        notifier,
        row,
        [
            {"type": "session.status_rescheduled"},
            _thread("session.thread_status_rescheduled", row),
        ],
    )


async def terminate(db: AsyncSession, notifier: Notifier, row: Session) -> list[EventRecord]:
    _count_turn_end(db, row, "terminated")
    _stop_clock(row)
    now = utcnow()
    row.status = "terminated"
    row.terminated_at = now
    row.updated_at = now
    row.wake_at = None
    await _webhook(db, "session.status_terminated", row)
    return await _announce(
        db,
        notifier,
        row,
        [_thread("session.thread_status_terminated", row), {"type": "session.status_terminated"}],
    )


# --- the agent loop's bookkeeping on the row: the loop asks, this module writes -----------------


def charge(row: Session, usage: UsageTotals) -> None:
    """The session's cumulative usage after a model request (the loop computes the sum)."""
    row.usage = usage


def tools_started(row: Session, tool_use_ids: Sequence[str]) -> None:
    """Calls whose results are not recorded yet: after a crash they are reported, never run twice."""
    row.inflight_tool_ids = list(tool_use_ids)


def tools_finished(row: Session, tool_use_ids: Sequence[str] | None = None) -> None:
    """The given calls (None: every call in flight) have their results recorded."""
    done = set(tool_use_ids) if tool_use_ids is not None else set(row.inflight_tool_ids)
    row.inflight_tool_ids = [i for i in row.inflight_tool_ids if i not in done]


def await_client(row: Session, event_ids: Sequence[str]) -> None:
    """Events the client must answer (custom tools, confirmations, client-run tools) join the
    pending ones."""
    row.pending_action_ids = [*row.pending_action_ids, *event_ids]


def waiting_for(row: Session, event_ids: Sequence[str]) -> None:
    """The complete set of events the session waits on while idle with `requires_action`."""
    row.pending_action_ids = list(event_ids)


def nothing_pending(row: Session) -> None:
    """An interrupt: no call is awaited from the client or in flight any more."""
    row.pending_action_ids = []
    row.inflight_tool_ids = []
