"""Outcomes (`user.define_outcome`): what the session row records of each, and the send rules.

An outcome is defined by a client event, processed on receipt: it is echoed with its `outc_` id
and the agent begins work at once. The row's `outcome_evaluations` hold one entry per outcome, as
`Session.outcome_evaluations` shows them: `pending` until the agent starts, `running` while it
works or revises, `evaluating` while the grader scores an iteration, then one of the terminal
results. Only one outcome is in progress at a time. The agent loop asks this module for every
change of an entry (one owner per row); the span events are the loop's.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from app.db.base import utcnow
from app.db.models import Session
from app.db.session_json import OutcomeEvaluation, StoredOutcomeEvaluation
from app.errors import InvalidRequest, NotFound
from app.events.schemas import FileRubric, UserDefineOutcome, dump_event
from app.events.types import EventRecord
from app.files import service as files
from app.ids import new_id
from app.sessions.repository import SessionColumns
from app.webhooks import service as webhooks
from app.wire import iso

DEFAULT_MAX_ITERATIONS = 3
TERMINAL = ("satisfied", "max_iterations_reached", "failed", "interrupted")
VERDICTS = ("satisfied", "needs_revision", "failed")


def _entries(row: Session | SessionColumns) -> list[StoredOutcomeEvaluation]:
    return list(row.outcome_evaluations or [])


def _shown(entry: StoredOutcomeEvaluation) -> OutcomeEvaluation:
    return {
        "type": entry["type"],
        "outcome_id": entry["outcome_id"],
        "description": entry["description"],
        "iteration": entry["iteration"],
        "result": entry["result"],
        "explanation": entry["explanation"],
        "completed_at": entry["completed_at"],
    }


def public(row: Session | SessionColumns) -> list[OutcomeEvaluation]:
    """`Session.outcome_evaluations` as the SDK types it (the iteration limit left out)."""
    return [_shown(e) for e in _entries(row)]


def active(row: Session) -> StoredOutcomeEvaluation | None:
    """The outcome in progress, if any (at most one is)."""
    return next((e for e in reversed(_entries(row)) if e["result"] not in TERMINAL), None)


def max_iterations(entry: StoredOutcomeEvaluation) -> int:
    return int(entry.get("max_iterations") or DEFAULT_MAX_ITERATIONS)


async def check(db: AsyncSession, row: Session, indexed: Sequence[tuple[str, UserDefineOutcome]]) -> None:
    """The outcomes of one request (``where`` names each, e.g. ``events[2]``), checked before
    anything is written: one at a time, none while tool calls wait on the client, rubric files
    that exist."""
    in_progress = active(row)
    for i, (where, event) in enumerate(indexed):
        if in_progress is not None or i > 0:
            running = in_progress["outcome_id"] if in_progress else "defined earlier in this request"
            raise InvalidRequest(
                f"{where}: an outcome is already in progress ({running}); only one outcome at a "
                "time: wait until it ends (satisfied, failed, max_iterations_reached) or send "
                "user.interrupt"
            )
        if row.pending_action_ids:
            raise InvalidRequest(
                f"{where}: the session waits on tool calls ({', '.join(row.pending_action_ids)}); "
                "answer them before defining an outcome"
            )
        if isinstance(event.rubric, FileRubric):
            await _check_file(db, event.rubric.file_id, f"{where}.rubric.file_id")


async def _check_file(db: AsyncSession, file_id: str, where: str) -> None:
    try:
        found = await files.get(db, file_id)
    except NotFound as missing:
        raise InvalidRequest(f"{where}: file {file_id!r} not found") from missing
    if found.size_bytes > 4 * 262_144:
        raise InvalidRequest(f"{where}: a rubric file holds at most 1 MiB of text")


def define(row: Session, event: UserDefineOutcome) -> EventRecord:
    """The echo of a checked `user.define_outcome` (with its `outcome_id`); the outcome is
    recorded as `pending` on the row."""
    payload = dump_event(event)
    payload["outcome_id"] = new_id("outc")
    entry: StoredOutcomeEvaluation = {
        "type": "outcome_evaluation",
        "outcome_id": payload["outcome_id"],
        "description": event.description,
        "iteration": 0,
        "result": "pending",
        "explanation": None,
        "completed_at": None,
        "max_iterations": event.max_iterations or DEFAULT_MAX_ITERATIONS,
    }
    row.outcome_evaluations = [*_entries(row), entry]
    return payload


def _replace(
    row: Session,
    outcome_id: str,
    result: str,
    *,
    explanation: str | None = None,
    iteration: int | None = None,
    completed_at: str | None = None,
) -> None:
    """The entry's new ``result``, and whichever of the other fields are given."""
    entries = _entries(row)
    for i, entry in enumerate(entries):
        if entry["outcome_id"] == outcome_id:
            changed = entry.copy()
            changed["result"] = result
            if explanation is not None:
                changed["explanation"] = explanation
            if iteration is not None:
                changed["iteration"] = iteration
            if completed_at is not None:
                changed["completed_at"] = completed_at
            entries[i] = changed
            row.outcome_evaluations = entries
            return
    raise KeyError(outcome_id)


def begin_work(row: Session) -> None:
    """The agent starts a model request: a pending outcome is now being worked on."""
    current = active(row)
    if current is not None and current["result"] == "pending":
        _replace(row, current["outcome_id"], result="running")


def evaluating(row: Session, outcome_id: str) -> None:
    _replace(row, outcome_id, result="evaluating")


async def judged(db: AsyncSession, row: Session, outcome_id: str, verdict: str, explanation: str) -> str:
    """Record the grader's verdict on the current iteration; returns the result the
    evaluation ends with (`needs_revision` on the last allowed iteration is
    `max_iterations_reached`)."""
    entry = next(e for e in _entries(row) if e["outcome_id"] == outcome_id)
    result = verdict
    if verdict == "needs_revision" and int(entry["iteration"]) + 1 >= max_iterations(entry):
        result = "max_iterations_reached"
    if result == "needs_revision":
        iteration = int(entry["iteration"]) + 1
        _replace(row, outcome_id, result="running", iteration=iteration, explanation=explanation)
    else:
        _replace(row, outcome_id, result=result, explanation=explanation, completed_at=iso(utcnow()))
    await webhooks.emit(db, "session.outcome_evaluation_ended", row.id)
    return result


async def interrupted(db: AsyncSession, row: Session, outcome_id: str, explanation: str) -> None:
    _replace(row, outcome_id, result="interrupted", explanation=explanation, completed_at=iso(utcnow()))
    await webhooks.emit(db, "session.outcome_evaluation_ended", row.id)
