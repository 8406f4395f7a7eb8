"""Small log-writing actions of the loop, each inside the caller's unit of work."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from app.agent_loop import grader
from app.agent_loop.model_client import ModelUsage
from app.agent_loop.state import TurnState
from app.agent_loop.usage import span_usage
from app.db.models import Session
from app.events import service as events
from app.events.notifier import Notifier
from app.events.types import (
    ContentBlock,
    ErrorObject,
    EventRecord,
    SpanModelUsage,
    StopDetails,
    StopReason,
    harness_of,
)
from app.mcp.events import mcp_tool_result_event
from app.sessions import leases, outcomes, threads, transitions

INTERRUPTED = "Tool execution was interrupted before completion. Please retry."
UNKNOWN_OUTCOME = (
    "The worker running this tool stopped before recording its result, so its outcome is unknown. "
    "It was not run again; check its effects before retrying."
)


def error_result(use: EventRecord, message: str) -> EventRecord:
    """The error result of a call: `agent.mcp_tool_result` for an MCP call, else `agent.tool_result`."""
    content: list[ContentBlock] = [{"type": "text", "text": message}]
    if use["type"] == "agent.mcp_tool_use":
        return mcp_tool_result_event(use["id"], content, is_error=True)
    return {"type": "agent.tool_result", "tool_use_id": use["id"], "content": content, "is_error": True}


async def interrupt(
    db: AsyncSession,
    notifier: Notifier,
    row: Session,
    state: TurnState,
    event: EventRecord,
    history: list[EventRecord],
) -> None:
    """Close every call of the current response that has no result, record the interrupt, end an
    outcome in progress as `interrupted`, and end the turn with `end_turn` (a no-op on an idle
    session with nothing pending)."""
    open_calls = [u for u in state.tool_uses if u["id"] not in state.results]
    if state.open_request is not None:
        await close_open_request(db, notifier, row, state.open_request)
    await events.append(db, notifier, row.id, [error_result(u, INTERRUPTED) for u in open_calls])
    await events.mark_processed(db, notifier, row.id, [event["id"]])
    await _interrupt_outcome(db, notifier, row, history)
    was_waiting = bool(row.pending_action_ids)
    transitions.nothing_pending(row)
    if row.status != "idle" or was_waiting:
        await transitions.go_idle(db, notifier, row, {"type": "end_turn"})


async def close_open_request(
    db: AsyncSession, notifier: Notifier, row: Session, start: EventRecord
) -> None:
    """A request whose worker died mid-stream: end its span as failed (the retry follows)."""
    await events.append(db, notifier, row.id, [span_end(start["id"], is_error=True)])


def span_end(start_id: str, usage: SpanModelUsage | None = None, *, is_error: bool) -> EventRecord:
    """`span.model_request_end`; a request that produced no response counts zero tokens."""
    return {
        "type": "span.model_request_end",
        "model_request_start_id": start_id,
        "is_error": is_error,
        "model_usage": usage or span_usage(ModelUsage(), None),
    }


async def refuse(db: AsyncSession, notifier: Notifier, row: Session, state: TurnState) -> None:
    """Calls the client denied (or tools not enabled): the model gets an error result instead."""
    results = []
    for use in state.refused():
        confirmation = state.confirmations.get(use["id"])
        if confirmation is not None:
            message = "The user denied this tool call."
            if confirmation.get("deny_message"):
                message += f" Reason: {confirmation['deny_message']}"
        elif (evaluation := use.get("evaluation")) is not None and evaluation["type"] == "auto":
            judgement = evaluation.get("evaluated_permission")
            reason = judgement.get("reason_code", "indeterminate") if judgement else "indeterminate"
            message = (
                f"The server's permission judge (auto policy) denied this call ({reason}); it did not run."
            )
        else:
            message = f"Tool {use.get('name')!r} is not enabled for this agent."
        results.append(error_result(use, message))
    await events.append(db, notifier, row.id, results)


async def wait_for_client(db: AsyncSession, notifier: Notifier, row: Session, blocking: list[str]) -> None:
    transitions.waiting_for(row, blocking)
    if row.parent_session_id is not None:  # a thread's client is its session's: shown there too
        await threads.cross_post_blocking(db, notifier, row, blocking)
    await transitions.go_idle(db, notifier, row, {"type": "requires_action", "event_ids": blocking})
    leases.release(row, None)


def stop_of(response: EventRecord) -> tuple[StopReason, StopDetails | None]:
    """The idle ``stop_reason`` a finished response ends its turn with, and ``stop_details``."""
    if harness_of(response).get("stop_reason") == "refusal":
        details = harness_of(response).get("stop_details") or {
            "type": "refusal",
            "category": None,
            "explanation": None,
        }
        return {"type": "refusal"}, details
    return {"type": "end_turn"}, None


async def tool_limit_reached(db: AsyncSession, notifier: Notifier, row: Session) -> None:
    error: ErrorObject = {
        "type": "tool_use_limit_reached_error",
        "message": "The agent reached the limit of model requests in one turn.",
        "retry_status": {"type": "exhausted"},
    }
    await events.append(db, notifier, row.id, [{"type": "session.error", "error": error}])
    await transitions.go_idle(db, notifier, row, {"type": "retries_exhausted"})


async def compaction_limit_reached(db: AsyncSession, notifier: Notifier, row: Session) -> None:
    error: ErrorObject = {
        "type": "compaction_limit_reached_error",
        "message": "The conversation stayed over the context threshold after repeated compactions.",
        "retry_status": {"type": "exhausted"},
    }
    await events.append(db, notifier, row.id, [{"type": "session.error", "error": error}])
    await transitions.go_idle(db, notifier, row, {"type": "retries_exhausted"})


async def unknown_outcomes(
    db: AsyncSession, notifier: Notifier, row: Session, uses: list[EventRecord]
) -> None:
    await events.append(db, notifier, row.id, [error_result(u, UNKNOWN_OUTCOME) for u in uses])
    ids = {u["id"] for u in uses}
    transitions.tools_finished(row, list(ids))


async def _interrupt_outcome(
    db: AsyncSession, notifier: Notifier, row: Session, history: list[EventRecord]
) -> None:
    """The outcome in progress ends `interrupted`: its open evaluation is closed, or, while the
    agent was working, an evaluation end with an empty start id is recorded."""
    current = outcomes.active(row) if row.parent_session_id is None else None
    if current is None:
        return
    outcome_id = str(current["outcome_id"])
    start = grader.open_start(history, outcome_id)
    explanation = "The user interrupted the session before the outcome was evaluated as met."
    end: EventRecord = {
        "type": grader.END,
        "outcome_evaluation_start_id": str(start["id"]) if start is not None else "",
        "outcome_id": outcome_id,
        "iteration": int(current["iteration"]),
        "result": "interrupted",
        "explanation": explanation,
        "usage": span_usage(ModelUsage(), None),
    }
    await events.append(db, notifier, row.id, [end])
    await outcomes.interrupted(db, row, outcome_id, explanation)
