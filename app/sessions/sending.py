"""What happens to the events a client sends, by type.

* `user.message`, `user.interrupt`, `system.message`: queued (`processed_at` null) until the
  agent takes them; the session is made runnable.
* `user.define_outcome`: processed on receipt, echoed with its `outcome_id`; the agent begins
  work at once (see `outcomes`).
* `user.tool_confirmation`, `user.custom_tool_result`, `user.tool_result`: processed on receipt.
  Each must answer a tool use the session is waiting on (`Session.pending_action_ids`), or one
  of its child threads' (by the id of the copy cross-posted to the primary stream or of the
  thread's own event; written to that thread's log). While the session (or thread) is idle on
  `requires_action`, answering the last one resumes it; answering only some re-emits the idle
  with the rest.

A request is validated whole before anything is written (all-or-nothing).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import Session
from app.errors import InvalidRequest
from app.events import service as events
from app.events.notifier import Notifier
from app.events.schemas import (
    SystemMessage,
    UserCustomToolResult,
    UserDefineOutcome,
    UserInterrupt,
    UserMessage,
    UserToolConfirmation,
    UserToolResult,
    dump_event,
)
from app.events.types import EventRecord, StopReason
from app.sessions import outcomes, threads, transitions

QUEUED = ("user.message", "user.interrupt", "system.message")
SYSTEM_MESSAGE_FOLLOWS = (UserMessage, UserToolResult, UserCustomToolResult)


def _answer_id(event: Any) -> str | None:
    if isinstance(event, UserToolConfirmation | UserToolResult):
        return event.tool_use_id
    if isinstance(event, UserCustomToolResult):
        return event.custom_tool_use_id
    return None


def _check_system_message(params: Sequence[Any]) -> None:
    positions = [i for i, e in enumerate(params) if isinstance(e, SystemMessage)]
    if not positions:
        return
    if len(positions) > 1:
        raise InvalidRequest(f"events[{positions[1]}]: at most one system.message per request")
    at = positions[0]
    if at != len(params) - 1:
        raise InvalidRequest(f"events[{at}]: system.message must be the last event of the request")
    if at == 0 or not isinstance(params[at - 1], SYSTEM_MESSAGE_FOLLOWS):
        raise InvalidRequest(
            f"events[{at}]: system.message must immediately follow the user.message, user.tool_result "
            "or user.custom_tool_result it accompanies"
        )


def _check_answers(
    row: Session, params: Sequence[Any], environment_type: str, routes: dict[str, threads.Route]
) -> None:
    pending = set(row.pending_action_ids) | set(routes)
    for i, event in enumerate(params):
        if isinstance(event, UserToolResult) and environment_type != "self_hosted":
            raise InvalidRequest(f"events[{i}]: user.tool_result is only valid on self_hosted environments")
        answer = _answer_id(event)
        if answer is None:
            continue
        if answer not in pending:
            raise InvalidRequest(
                f"events[{i}]: {answer} does not match a tool use this session is waiting on "
                f"(waiting on: {', '.join(row.pending_action_ids) or 'nothing'})"
            )
        pending.discard(answer)


async def accept_client_events(
    db: AsyncSession, notifier: Notifier, row: Session, params: Sequence[Any], environment_type: str
) -> list[EventRecord]:
    _check_system_message(params)
    answers = [
        a for a in (_answer_id(e) for e in params) if a is not None and a not in row.pending_action_ids
    ]
    routes = await threads.answer_routes(db, row, answers)  # for the session's child threads
    _check_answers(row, params, environment_type, routes)
    defined = [(f"events[{i}]", e) for i, e in enumerate(params) if isinstance(e, UserDefineOutcome)]
    await outcomes.check(db, row, defined)
    echoed: list[EventRecord] = []
    queued_any = False
    for event in params:
        payload = dump_event(event)
        routed = (
            await threads.route_interrupt(db, notifier, row, payload)
            if isinstance(event, UserInterrupt)
            else None
        )
        if routed is not None:  # for one child thread only
            echoed += routed
        elif isinstance(event, UserDefineOutcome):
            echoed += await events.append(db, notifier, row.id, [outcomes.define(row, event)])
            if row.status == "idle":  # the agent begins work on receipt
                await transitions.start_running(db, notifier, row)
            queued_any = True
        elif payload["type"] in QUEUED:
            echoed += await events.enqueue(db, row.id, [payload])
            queued_any = True
            if isinstance(event, UserInterrupt):
                transitions.announce_interrupt(db, notifier, row)
        elif _answer_id(event) in routes:
            echoed += await threads.deliver_answer(db, notifier, payload, routes[str(_answer_id(event))])
        else:
            echoed += await events.append(db, notifier, row.id, [payload])
            answered = _answer_id(event)
            row.pending_action_ids = [i for i in row.pending_action_ids if i != answered]
    own = [e for e in params if _answer_id(e) not in routes]
    await _after_answers(db, notifier, row, answered_any=_answered(own))
    for thread in {route[0].id: route[0] for route in routes.values()}.values():
        await _resume_thread(db, notifier, row, thread)
    if queued_any:
        transitions.request_run(db, notifier, row)
    await db.flush()
    return echoed


def _answered(params: Sequence[Any]) -> bool:
    return any(_answer_id(e) is not None for e in params)


async def _resume_thread(db: AsyncSession, notifier: Notifier, session: Session, thread: Session) -> None:
    """A child thread got answers on its session: with none left to wait on it works again at once
    (and so does its session, which is running while any thread runs)."""
    if thread.status != "idle" or thread.pending_action_ids:
        await _after_answers(db, notifier, thread, answered_any=True)
        return
    await transitions.start_running(db, notifier, thread)
    transitions.request_run(db, notifier, thread)
    if session.status == "idle" and not session.pending_action_ids:
        await transitions.start_running(db, notifier, session)
        transitions.request_run(db, notifier, session)


async def _after_answers(db: AsyncSession, notifier: Notifier, row: Session, *, answered_any: bool) -> None:
    """Resume a session idle on requires_action once every blocking tool use is answered."""
    if not answered_any or row.status != "idle":
        return
    if row.pending_action_ids:
        stop_reason: StopReason = {"type": "requires_action", "event_ids": list(row.pending_action_ids)}
        await transitions.go_idle(db, notifier, row, stop_reason)
        return
    transitions.request_run(db, notifier, row)
