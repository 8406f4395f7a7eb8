"""Workflow runs of a multi-agent session: the rows and the `workflow_run.*` events.

A run follows a plan of phases; each phase is a set of agent tasks run as threads in parallel
(the agent loop creates them, see `app/agent_loop/workflow.py`), and the next phase starts once
every thread of the current one has replied. The run's events go on its session's log (the
primary stream), in the SDK's order: `created`, `status_running`, per phase `phase_started` ...
`phase_ended`, and last `status_ended` (after `workflow_run.error` when it ends in error). A run
whose current threads all stopped without replying (waiting on the client, a budget, an
interrupt of one thread) is idle (`status_idle`) until one of them works again.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Literal, TypedDict

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.base import utcnow
from app.db.models import Session, WorkflowRun
from app.events import service as events
from app.events.notifier import Notifier
from app.events.types import EventRecord, WorkflowRunErrorObject, WorkflowRunPhase, WorkflowRunResult
from app.ids import new_id
from app.shared.agent_config import SessionAgent

# Runs of one session that have not ended; another is refused (`max_workflow_runs_error`).
MAX_OPEN_RUNS = 5
# Threads one run may create over its life (`thread_limit_error`).
MAX_RUN_THREADS = 25
ErrorType = Literal[
    "timeout_error", "program_error", "unknown_error", "thread_limit_error", "max_workflow_runs_error"
]
class PlanTask(TypedDict):
    """A task of a workflow plan: the agent of its thread and what the thread is told."""

    agent: SessionAgent
    message: str


class PlanPhase(TypedDict):
    name: str
    description: str | None
    tasks: list[PlanTask]


class StoredPhase(PlanPhase):
    """A phase as the run keeps it (``WorkflowRun.phases``), with its id."""

    id: str


class WorkflowPlan(TypedDict):
    """A run's plan as ``agent_loop.workflow.parse_plan`` checked it."""

    name: str
    description: str | None
    phases: list[PlanPhase]


class RunRefused(Exception):
    """No run was created; the `workflow_run.error` saying why is on the log."""


async def get(db: AsyncSession, run_id: str) -> WorkflowRun | None:
    return await db.get(WorkflowRun, run_id, with_for_update=True)


async def open_runs(db: AsyncSession, session_id: str) -> Sequence[WorkflowRun]:
    stmt = (
        select(WorkflowRun)
        .where(WorkflowRun.session_id == session_id, WorkflowRun.status != "ended")
        .order_by(WorkflowRun.created_at, WorkflowRun.id)
        .with_for_update()
    )
    return (await db.scalars(stmt)).all()


def error(kind: ErrorType, message: str) -> WorkflowRunErrorObject:
    return {"type": kind, "message": message}


async def refuse(
    db: AsyncSession, notifier: Notifier, session: Session, kind: ErrorType, message: str
) -> None:
    """A run that was not created: `workflow_run.error` without a run id, then `RunRefused`."""
    await events.append(
        db,
        notifier,
        session.id,
        [{"type": "workflow_run.error", "error": error(kind, message), "workflow_run_id": None}],
    )


async def create(
    db: AsyncSession,
    notifier: Notifier,
    session: Session,
    plan: WorkflowPlan,
    timeout_seconds: float,
) -> WorkflowRun:
    """A running run of ``plan`` (`{name, description, phases: [{name, description, tasks}]}`),
    announced; its first phase is the caller's to start. `RunRefused` (after the
    `workflow_run.error`) when the session has too many open runs."""
    if len(await open_runs(db, session.id)) >= MAX_OPEN_RUNS:
        message = f"{MAX_OPEN_RUNS} workflow runs of this session are already open"
        await refuse(db, notifier, session, "max_workflow_runs_error", message)
        raise RunRefused(message)
    now = utcnow()
    phases: list[StoredPhase] = [{**phase, "id": new_id("wfph")} for phase in plan["phases"]]
    run = WorkflowRun(
        id=new_id("wfrun"),
        session_id=session.id,
        name=plan["name"],
        description=plan["description"],
        phases=phases,
        status="running",
        phase_index=0,
        phase_started_id=None,
        phase_thread_ids=[],
        results=[],
        threads_created=0,
        result=None,
        deadline_at=now + timedelta(seconds=timeout_seconds),
        created_at=now,
        updated_at=now,
        ended_at=None,
    )
    db.add(run)
    await db.flush()
    listed: list[WorkflowRunPhase] = [
        {"id": p["id"], "name": p["name"], "description": p.get("description")} for p in phases
    ]
    created: EventRecord = {
        "type": "workflow_run.created",
        "workflow_run_id": run.id,
        "name": run.name,
        "description": run.description,
        "phases": listed,
    }
    await events.append(db, notifier, session.id, [created, _status(run, "running")])
    return run


def _status(run: WorkflowRun, status: str) -> EventRecord:
    return {"type": f"workflow_run.status_{status}", "workflow_run_id": run.id}


def current_phase(run: WorkflowRun) -> StoredPhase | None:
    phase: StoredPhase | None = run.phases[run.phase_index] if run.phase_index < len(run.phases) else None
    return phase


async def open_phase(db: AsyncSession, notifier: Notifier, run: WorkflowRun) -> StoredPhase:
    """`phase_started` for the current phase; returns the phase."""
    phase: StoredPhase = run.phases[run.phase_index]
    started: EventRecord = {
        "type": "workflow_run.phase_started",
        "workflow_run_id": run.id,
        "workflow_run_phase_id": phase["id"],
    }
    (event,) = await events.append(db, notifier, run.session_id, [started])
    run.phase_started_id = event["id"]
    run.phase_thread_ids = []
    run.results = [*run.results, []]
    run.updated_at = utcnow()
    return phase


def add_threads(run: WorkflowRun, thread_ids: Sequence[str]) -> None:
    run.phase_thread_ids = [*run.phase_thread_ids, *thread_ids]
    run.threads_created += len(thread_ids)


async def close_phase(db: AsyncSession, notifier: Notifier, run: WorkflowRun) -> None:
    if run.phase_started_id is None:
        return
    phase = run.phases[run.phase_index]
    ended: EventRecord = {
        "type": "workflow_run.phase_ended",
        "workflow_run_id": run.id,
        "workflow_run_phase_id": phase["id"],
        "phase_started_id": run.phase_started_id,
    }
    await events.append(db, notifier, run.session_id, [ended])
    run.phase_started_id = None
    run.phase_index += 1


async def end(db: AsyncSession, notifier: Notifier, run: WorkflowRun, result: WorkflowRunResult) -> None:
    """The run ends (`result`: completed, stopped or `{type: error, error}`): the error first, the
    open phase closed, then `status_ended`."""
    if run.status == "ended":
        return
    if result["type"] == "error":
        failed: EventRecord = {
            "type": "workflow_run.error",
            "error": result["error"],
            "workflow_run_id": run.id,
        }
        await events.append(db, notifier, run.session_id, [failed])
    await close_phase(db, notifier, run)
    ended: EventRecord = {**_status(run, "ended"), "result": result}
    await events.append(db, notifier, run.session_id, [ended])
    now = utcnow()
    run.status, run.result, run.ended_at, run.updated_at = "ended", dict(result), now, now


def record_reply(run: WorkflowRun, thread: Session, text: str) -> bool:
    """A thread of the current phase replied (a later reply replaces its earlier one). Returns
    whether every thread of the phase has replied."""
    if run.status == "ended" or thread.id not in run.phase_thread_ids:
        return False
    replies = [r for r in run.results[-1] if r["thread_id"] != thread.id]
    replies.append({"thread_id": thread.id, "agent_name": thread.agent.get("name", ""), "text": text})
    run.results = [*run.results[:-1], replies]
    run.updated_at = utcnow()
    return len(replies) == len(run.phase_thread_ids)


async def resume(db: AsyncSession, notifier: Notifier, run: WorkflowRun) -> None:
    """Work goes on in an idle run."""
    if run.status == "idle":
        await events.append(db, notifier, run.session_id, [_status(run, "running")])
        run.status = "running"


async def thread_stopped(db: AsyncSession, notifier: Notifier, thread: Session) -> None:
    """A thread of a run went idle: if no thread of its phase works and some have not replied,
    the run is idle."""
    run = await get(db, thread.workflow_run_id) if thread.workflow_run_id else None
    if run is None or run.status != "running" or thread.id not in run.phase_thread_ids:
        return
    replied = {r["thread_id"] for r in run.results[-1]}
    if set(run.phase_thread_ids) <= replied:
        return
    stmt = select(Session).where(Session.id.in_(run.phase_thread_ids))
    rows = (await db.scalars(stmt)).all()
    if any(r.status in ("running", "rescheduling") for r in rows if r.id != thread.id):
        return
    await events.append(db, notifier, run.session_id, [_status(run, "idle")])
    run.status = "idle"


async def thread_started(db: AsyncSession, notifier: Notifier, thread: Session) -> None:
    """A thread of a run works again: an idle run runs again."""
    run = await get(db, thread.workflow_run_id) if thread.workflow_run_id else None
    if run is not None and thread.id in run.phase_thread_ids:
        await resume(db, notifier, run)


async def stop_all(db: AsyncSession, notifier: Notifier, session: Session) -> None:
    """The session was interrupted as a whole: its open runs end `stopped` (their threads are
    interrupted with the rest)."""
    for run in await open_runs(db, session.id):
        await end(db, notifier, run, {"type": "stopped"})


async def delete_for_session(db: AsyncSession, session_id: str) -> None:
    await db.execute(delete(WorkflowRun).where(WorkflowRun.session_id == session_id))


async def expired(db: AsyncSession, session_id: str, now: datetime | None = None) -> list[WorkflowRun]:
    now = now or utcnow()
    return [run for run in await open_runs(db, session_id) if run.deadline_at <= now]


async def next_deadline(db: AsyncSession, session_id: str) -> datetime | None:
    deadlines = [run.deadline_at for run in await open_runs(db, session_id)]
    return min(deadlines) if deadlines else None
