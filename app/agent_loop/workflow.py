"""`run_workflow` and `stop_workflow`: workflow runs whose plan the agent writes.

The plan is a declarative program, never code the server executes: a named list of phases, each
a list of tasks `{agent | inline_agent, message}`. The phases run one after another; the tasks
of a phase run in parallel, each as a thread of the session (with the run's `workflow_run_id`).
A task of a later phase is told the replies of every earlier phase after its own message. Each
thread's reply also reaches the agent that started the run, as any thread's does. A plan the
server refuses is a `program_error` (no run is created); the run's own failures are
`thread_limit_error` (more threads than a run may create, or than may work at once) and
`timeout_error` (the run's `timeout_seconds`, checked whenever the agent waits on its threads).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import JsonValue
from sqlalchemy.ext.asyncio import AsyncSession

from app.agent_loop import tools
from app.agent_loop.inline_agents import Refused, inline_agent
from app.db.models import Session, WorkflowRun
from app.events.notifier import Notifier
from app.events.types import ContentBlock
from app.sessions import threads, workflow_runs
from app.sessions.workflow_runs import PlanPhase, PlanTask, RunRefused, WorkflowPlan
from app.shared.agent_config import SessionAgent

MAX_PHASES = 20
MAX_TASKS = 100  # in a whole plan; a run may still create at most MAX_RUN_THREADS threads
DEFAULT_TIMEOUT_SECONDS = 3600
MAX_TIMEOUT_SECONDS = 86_400
MAX_NAME = 256


def _string(value: Any, where: str, *, limit: int = MAX_NAME) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > limit:
        raise Refused(f"{where}: a non-empty string of at most {limit} characters")
    return value


def _optional_string(value: Any, where: str, *, limit: int = MAX_NAME) -> str | None:
    return None if value is None else _string(value, where, limit=limit)


def _task(agent: SessionAgent, raw: Any, where: str) -> PlanTask:
    if not isinstance(raw, dict):
        raise Refused(f"{where}: an object {{agent | inline_agent, message}}")
    message = _string(raw.get("message"), f"{where}.message", limit=100_000)
    if raw.get("inline_agent") is not None:
        if raw.get("agent") is not None:
            raise Refused(f"{where}: give either `agent` or `inline_agent`, not both")
        if not tools.inline_allowed(agent, "workflows"):
            raise Refused(f"{where}.inline_agent: inline agents are disabled for workflow runs")
        try:
            return {"agent": inline_agent(agent, raw["inline_agent"]), "message": message}
        except Refused as refused:
            raise Refused(f"{where}: {refused}") from None
    found = tools.delegation(agent, "workflows")
    predefined = (found.get("predefined_agents") or []) if found is not None else []
    name = raw.get("agent")
    chosen = next((a for a in predefined if name in (a.get("name"), a.get("id"))), None)
    if chosen is None:
        names = ", ".join(str(a.get("name")) for a in predefined) or "none"
        raise Refused(f"{where}.agent: no agent named {name!r} for workflow runs (agents: {names})")
    return {"agent": chosen, "message": message}


def _phase(agent: SessionAgent, raw: Any, where: str) -> PlanPhase:
    if not isinstance(raw, dict):
        raise Refused(f"{where}: an object {{name, description?, tasks}}")
    tasks = raw.get("tasks")
    if not isinstance(tasks, list) or not tasks:
        raise Refused(f"{where}.tasks: a non-empty list of tasks")
    return {
        "name": _string(raw.get("name"), f"{where}.name"),
        "description": _optional_string(raw.get("description"), f"{where}.description", limit=2048),
        "tasks": [_task(agent, t, f"{where}.tasks[{i}]") for i, t in enumerate(tasks)],
    }


def parse_plan(
    agent: SessionAgent,
    raw: dict[str, JsonValue],  # a tool\'s input, chosen by the model
) -> tuple[WorkflowPlan, float]:
    """The plan as stored, and its timeout; `Refused` names what is wrong."""
    phases = raw.get("phases")
    if not isinstance(phases, list) or not phases or len(phases) > MAX_PHASES:
        raise Refused(f"phases: a list of 1 to {MAX_PHASES} phases")
    timeout = raw.get("timeout_seconds", DEFAULT_TIMEOUT_SECONDS)
    if (
        isinstance(timeout, bool)
        or not isinstance(timeout, int | float)
        or not 0 < timeout <= MAX_TIMEOUT_SECONDS
    ):
        raise Refused(f"timeout_seconds: a number of seconds, more than 0 and at most {MAX_TIMEOUT_SECONDS}")
    parsed = [_phase(agent, p, f"phases[{i}]") for i, p in enumerate(phases)]
    plan: WorkflowPlan = {
        "name": _string(raw.get("name"), "name"),
        "description": _optional_string(raw.get("description"), "description", limit=2048),
        "phases": parsed,
    }
    if sum(len(p["tasks"]) for p in parsed) > MAX_TASKS:
        raise Refused(f"phases: at most {MAX_TASKS} tasks in a plan")
    return plan, float(timeout)


async def start(
    db: AsyncSession,
    notifier: Notifier,
    row: Session,
    tool_input: dict[str, JsonValue],  # a tool\'s input, chosen by the model
) -> tuple[str, bool]:
    """Create and start a run (the tool's result text, and whether it is an error)."""
    if row.parent_session_id is not None:
        return "only the session's primary thread can start workflow runs", True
    try:
        plan, timeout = parse_plan(row.agent, tool_input)
    except Refused as refused:
        message = f"The workflow plan was refused: {refused}"
        await workflow_runs.refuse(db, notifier, row, "program_error", message)
        return message, True
    try:
        run = await workflow_runs.create(db, notifier, row, plan, timeout)
    except RunRefused as refused:
        return str(refused), True
    await _start_phase(db, notifier, row, run)
    return (
        f"Workflow run {run.id} ({run.name}) started with {len(run.phases)} phase(s). Its threads work "
        "in parallel with you; each thread's reply arrives as a message from that thread.",
        False,
    )


def _task_text(run: WorkflowRun, task: PlanTask) -> str:
    done = run.results[:-1]
    if not done:
        return str(task["message"])
    lines = [task["message"], "", f"Results of the earlier phases of workflow run {run.name}:"]
    for phase, replies in zip(run.phases, done, strict=False):
        lines.append(f"Phase {phase['name']}:")
        lines += [f"- {r['agent_name']} ({r['thread_id']}): {r['text']}" for r in replies]
    return "\n".join(lines)


async def _start_phase(db: AsyncSession, notifier: Notifier, session: Session, run: WorkflowRun) -> None:
    phase = workflow_runs.current_phase(run)
    if phase is None:
        await workflow_runs.end(db, notifier, run, {"type": "completed"})
        return
    await workflow_runs.open_phase(db, notifier, run)
    tasks = phase["tasks"]
    over_run = run.threads_created + len(tasks) > workflow_runs.MAX_RUN_THREADS
    over_session = await threads.active_children(db, session.id) + len(tasks) > threads.MAX_ACTIVE_THREADS
    if over_run or over_session:
        limit = (
            f"a run may create at most {workflow_runs.MAX_RUN_THREADS} threads"
            if over_run
            else f"at most {threads.MAX_ACTIVE_THREADS} threads of a session may work at once"
        )
        failure = workflow_runs.error(
            "thread_limit_error", f"Phase {phase['name']} needs {len(tasks)} threads; {limit}"
        )
        await workflow_runs.end(db, notifier, run, {"type": "error", "error": failure})
        return
    created = [
        await threads.create_child(db, notifier, session, task["agent"], workflow_run_id=run.id)
        for task in tasks
    ]
    workflow_runs.add_threads(run, [c.id for c in created])
    for child, task in zip(created, tasks, strict=True):
        await threads.deliver(db, notifier, session, child, [{"type": "text", "text": _task_text(run, task)}])


async def thread_replied(
    db: AsyncSession, notifier: Notifier, thread: Session, parent: Session, content: list[ContentBlock]
) -> None:
    """A thread of a run ended its turn: its reply is recorded; the last of a phase moves the
    run on to its next phase (or ends it, completed)."""
    run = await workflow_runs.get(db, thread.workflow_run_id) if thread.workflow_run_id else None
    if run is None:
        return
    text = "\n".join(b["text"] for b in content if b.get("type") == "text")
    if workflow_runs.record_reply(run, thread, text):
        await workflow_runs.resume(db, notifier, run)
        await workflow_runs.close_phase(db, notifier, run)
        await _start_phase(db, notifier, parent, run)


async def _interrupt_threads(
    db: AsyncSession, notifier: Notifier, session: Session, run: WorkflowRun
) -> None:
    for thread_id in run.phase_thread_ids:
        row = await threads.child(db, session.id, thread_id, for_update=True)
        if row is not None and threads.working(row):
            await threads.interrupt(db, notifier, row)


async def stop(
    db: AsyncSession,
    notifier: Notifier,
    row: Session,
    tool_input: dict[str, JsonValue],  # a tool\'s input, chosen by the model
) -> tuple[str, bool]:
    """`stop_workflow`: the run's working threads are interrupted and it ends `stopped`."""
    run_id = tool_input.get("workflow_run_id")
    run = await workflow_runs.get(db, str(run_id)) if isinstance(run_id, str) else None
    if run is None or run.session_id != row.id:
        return f"{run_id!r} is not a workflow run of this session", True
    if run.status == "ended":
        return f"workflow run {run.id} has already ended", True
    await _interrupt_threads(db, notifier, row, run)
    await workflow_runs.end(db, notifier, run, {"type": "stopped"})
    return f"Workflow run {run.id} stopped.", False


async def expire(db: AsyncSession, notifier: Notifier, row: Session) -> datetime | None:
    """Runs past their deadline end with `timeout_error` (their threads interrupted); returns the
    next deadline of the runs still open, when the agent must look again."""
    for run in await workflow_runs.expired(db, row.id):
        await _interrupt_threads(db, notifier, row, run)
        failure = workflow_runs.error("timeout_error", "The workflow run reached its time limit")
        await workflow_runs.end(db, notifier, run, {"type": "error", "error": failure})
    return await workflow_runs.next_deadline(db, row.id)
