"""Deployments: an agent, an environment and initial events that become a session on demand
(`run`) or on a cron schedule; every firing leaves a run record with its session or its error.

Scheduling (behaviour §18, and our choices where it is silent):

* A schedule's slots are cron matches in its IANA zone; a deployment fires at a slot plus its
  fixed jitter. The scheduler claims a slot by moving `next_slot_at` forward with a
  compare-and-set, and runs are unique per (deployment, slot), so a slot fires once however many
  server processes share the database.
* **Missed slots** (no server was running): at most one catch-up. When the scheduler finds slots
  in the past it fires only the latest of them, and only if it is no older than
  `MAS_DEPLOYMENT_MISSED_GRACE_SECONDS`; older ones are skipped without a run record.
* A scheduled firing that fails because the agent or environment is archived (or the environment
  is gone) records the failed run and pauses the deployment with that error; manual runs record the
  error and change nothing else. Paused deployments still run manually.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from app.agents import service as agents
from app.db.base import utcnow
from app.db.deployment_json import RunError, TriggerContext
from app.db.engine import wake_after_commit
from app.db.models import Deployment as Row
from app.db.models import DeploymentRun as RunRow
from app.deployments import cron, repository
from app.deployments.schemas import (
    AgentParams,
    AgentReference,
    Deployment,
    DeploymentCreate,
    DeploymentPage,
    DeploymentRun,
    DeploymentRunPage,
    DeploymentUpdate,
    Schedule,
    ScheduleParams,
)
from app.environments import service as environments
from app.errors import ApiError, InvalidRequest, NotFound
from app.events.notifier import Notifier
from app.events.schemas import dump_event
from app.ids import new_id
from app.sessions import service as sessions
from app.sessions.schemas import SessionCreate
from app.shared.metadata import patch_metadata, validate_metadata
from app.shared.pagination import decode_cursor, decode_time_key, newest_first_page
from app.webhooks import service as webhooks

WAKE_TOPIC = "deployments"  # the notifier's topic that wakes the schedulers (a schedule changed)


@dataclass(frozen=True)
class Timing:
    max_jitter_seconds: float
    missed_grace_seconds: float


# --- views -------------------------------------------------------------------------------------


def _schedule(row: Row, now: datetime) -> Schedule | None:
    if row.schedule_expression is None or row.schedule_timezone is None:
        return None
    upcoming = (
        [] if row.archived_at else cron.slots_after(row.schedule_expression, row.schedule_timezone, now, 5)
    )
    return Schedule(
        expression=row.schedule_expression,
        timezone=row.schedule_timezone,
        last_run_at=row.last_run_at,
        upcoming_runs_at=upcoming,
    )


def _view(row: Row) -> Deployment:
    return Deployment(
        id=row.id,
        name=row.name,
        description=row.description,
        agent=AgentReference(id=row.agent_id, version=row.agent_version),
        environment_id=row.environment_id,
        initial_events=list(row.initial_events),
        metadata=dict(row.metadata_),
        resources=list(row.resources),
        vault_ids=list(row.vault_ids),
        budget=row.budget,
        schedule=_schedule(row, utcnow()),
        status="paused" if row.status == "paused" else "active",
        paused_reason=row.paused_reason if row.status == "paused" else None,
        created_at=row.created_at,
        updated_at=row.updated_at,
        archived_at=row.archived_at,
    )


def _run_view(row: RunRow) -> DeploymentRun:
    trigger: TriggerContext = {"type": row.trigger}
    if row.scheduled_at is not None:
        trigger["scheduled_at"] = row.scheduled_at.isoformat().replace("+00:00", "Z")
    return DeploymentRun(
        id=row.id,
        deployment_id=row.deployment_id,
        agent=AgentReference(id=row.agent_id, version=row.agent_version),
        session_id=row.session_id,
        error=row.error,
        trigger_context=trigger,
        created_at=row.created_at,
    )


# --- create / update ------------------------------------------------------------------------------


def _reject_unsupported(params: DeploymentCreate | DeploymentUpdate) -> None:
    if params.resources:
        raise InvalidRequest("resources: session resources are not supported by this mas build yet")
    if params.budget is not None:
        raise InvalidRequest("budget: session budgets are not supported by this mas build yet")


async def _pin_agent(db: AsyncSession, agent: str | AgentParams) -> tuple[str, int]:
    ref = agent if isinstance(agent, str) else agent.model_dump()
    agent_id, version, _ = await agents.resolve_session_agent(db, ref)
    return agent_id, version


async def _check_environment(db: AsyncSession, environment_id: str) -> None:
    await environments.get_for_session(db, environment_id)


def _set_schedule(row: Row, schedule: ScheduleParams | None, timing: Timing, now: datetime) -> None:
    if schedule is None:
        row.schedule_expression = row.schedule_timezone = row.next_slot_at = None
        row.jitter_seconds = 0.0
        return
    cron.validate(schedule.expression, schedule.timezone)
    row.schedule_expression, row.schedule_timezone = schedule.expression, schedule.timezone
    row.jitter_seconds = cron.jitter_seconds(
        row.id, schedule.expression, schedule.timezone, now, timing.max_jitter_seconds
    )
    row.next_slot_at = cron.slots_after(schedule.expression, schedule.timezone, now, 1)[0]


async def create(db: AsyncSession, params: DeploymentCreate, timing: Timing) -> Deployment:
    _reject_unsupported(params)
    agent_id, version = await _pin_agent(db, params.agent)
    await _check_environment(db, params.environment_id)
    now = utcnow()
    row = Row(
        id=new_id("depl"),
        name=params.name,
        description=params.description,
        agent_id=agent_id,
        agent_version=version,
        environment_id=params.environment_id,
        initial_events=[dump_event(e) for e in params.initial_events],
        metadata_=validate_metadata(params.metadata or {}),
        resources=[],
        vault_ids=list(params.vault_ids or []),
        budget=None,
        last_run_at=None,
        status="active",
        paused_reason=None,
        created_at=now,
        updated_at=now,
        archived_at=None,
    )
    _set_schedule(row, params.schedule, timing, now)
    repository.add(db, row)
    await db.flush()
    wake_after_commit(db, WAKE_TOPIC)  # its first slot may come before the schedulers look again
    await webhooks.emit(db, "deployment.created", row.id)
    return _view(row)


async def _load(db: AsyncSession, deployment_id: str, *, for_update: bool = False) -> Row:
    row = await repository.get(db, deployment_id, for_update=for_update)
    if row is None:
        raise NotFound(f"Deployment {deployment_id} not found")
    return row


def _not_archived(row: Row) -> None:
    if row.archived_at is not None:
        raise InvalidRequest(f"Deployment {row.id} is archived")


async def get(db: AsyncSession, deployment_id: str) -> Deployment:
    return _view(await _load(db, deployment_id))


async def update(
    db: AsyncSession, deployment_id: str, params: DeploymentUpdate, timing: Timing
) -> Deployment:
    row = await _load(db, deployment_id, for_update=True)
    _not_archived(row)
    _reject_unsupported(params)
    sent = params.model_fields_set
    if params.name is not None:
        row.name = params.name
    if "description" in sent:
        row.description = params.description or None
    if params.agent is not None:
        row.agent_id, row.agent_version = await _pin_agent(db, params.agent)
    if params.environment_id is not None:
        await _check_environment(db, params.environment_id)
        row.environment_id = params.environment_id
    if params.initial_events is not None:
        row.initial_events = [dump_event(e) for e in params.initial_events]
    if params.metadata is not None:
        row.metadata_ = patch_metadata(row.metadata_, params.metadata)
    if "vault_ids" in sent:
        row.vault_ids = list(params.vault_ids or [])
    now = utcnow()
    if "schedule" in sent:
        _set_schedule(row, params.schedule, timing, now)
        wake_after_commit(db, WAKE_TOPIC)
    row.updated_at = now
    await db.flush()
    await webhooks.emit(db, "deployment.updated", row.id)
    return _view(row)


async def archive(db: AsyncSession, deployment_id: str) -> Deployment:
    row = await _load(db, deployment_id, for_update=True)
    if row.archived_at is None:
        row.archived_at = row.updated_at = utcnow()
        row.next_slot_at = None
        await db.flush()
        await webhooks.emit(db, "deployment.archived", row.id)
    return _view(row)


async def pause(db: AsyncSession, deployment_id: str) -> Deployment:
    row = await _load(db, deployment_id, for_update=True)
    _not_archived(row)
    if row.status != "paused":
        row.status, row.paused_reason = "paused", {"type": "manual"}
        row.updated_at = utcnow()
        await db.flush()
        await webhooks.emit(db, "deployment.paused", row.id)
    return _view(row)


async def unpause(db: AsyncSession, deployment_id: str) -> Deployment:
    """Resume the schedule from now on: slots that passed while paused are not made up."""
    row = await _load(db, deployment_id, for_update=True)
    _not_archived(row)
    if row.status == "paused":
        now = utcnow()
        row.status, row.paused_reason, row.updated_at = "active", None, now
        if row.schedule_expression and row.schedule_timezone:
            row.next_slot_at = cron.slots_after(row.schedule_expression, row.schedule_timezone, now, 1)[0]
        await db.flush()
        wake_after_commit(db, WAKE_TOPIC)
        await webhooks.emit(db, "deployment.unpaused", row.id)
    return _view(row)


async def list_deployments(
    db: AsyncSession,
    *,
    limit: int,
    page: str | None,
    include_archived: bool,
    status: str | None,
    agent_id: str | None,
) -> DeploymentPage:
    if include_archived and status is not None:
        raise InvalidRequest("status and include_archived cannot be combined")
    after = decode_time_key(decode_cursor(page, "desc"))
    rows, next_page = newest_first_page(
        await repository.page(
            db,
            after=after,
            limit=limit + 1,
            include_archived=include_archived,
            status=status,
            agent_id=agent_id,
        ),
        limit,
    )
    return DeploymentPage(data=[_view(r) for r in rows], next_page=next_page)


async def get_run(db: AsyncSession, run_id: str) -> DeploymentRun:
    row = await repository.get_run(db, run_id)
    if row is None:
        raise NotFound(f"Deployment run {run_id} not found")
    return _run_view(row)


async def list_runs(
    db: AsyncSession, *, limit: int, page: str | None, deployment_id: str | None
) -> DeploymentRunPage:
    after = decode_time_key(decode_cursor(page, "desc"))
    rows, next_page = newest_first_page(
        await repository.runs_page(db, after=after, limit=limit + 1, deployment_id=deployment_id), limit
    )
    return DeploymentRunPage(data=[_run_view(r) for r in rows], next_page=next_page)


# --- firing --------------------------------------------------------------------------------------

_PAUSING_ERRORS = ("agent_archived_error", "environment_archived_error", "environment_not_found_error")


async def _run_error(db: AsyncSession, row: Row) -> RunError | None:
    """Why a session cannot be created from ``row`` now, as a run error object."""
    try:
        env = await environments.get(db, row.environment_id)
    except NotFound:
        return {
            "type": "environment_not_found_error",
            "message": f"Environment {row.environment_id} not found",
        }
    if env.archived_at is not None:
        return {
            "type": "environment_archived_error",
            "message": f"Environment {row.environment_id} is archived",
        }
    try:
        await agents.resolve_session_agent(
            db, {"type": "agent", "id": row.agent_id, "version": row.agent_version}
        )
    except NotFound as exc:
        return {"type": "unknown_error", "message": exc.message}
    except InvalidRequest as exc:
        kind = "agent_archived_error" if "archived" in exc.message else "session_creation_rejected_error"
        return {"type": kind, "message": exc.message}
    return None


async def _start_session(
    db: AsyncSession, notifier: Notifier, row: Row
) -> tuple[str | None, RunError | None]:
    error = await _run_error(db, row)
    if error is not None:
        return None, error
    params = SessionCreate.model_validate(
        {
            "agent": {"type": "agent", "id": row.agent_id, "version": row.agent_version},
            "environment_id": row.environment_id,
            "initial_events": row.initial_events,
            "vault_ids": row.vault_ids,
        }
    )
    try:
        async with db.begin_nested():  # a refused session leaves nothing half-written
            session = await sessions.create(db, notifier, params, deployment_id=row.id)
    except ApiError as exc:
        return None, {"type": "session_creation_rejected_error", "message": exc.message}
    return session.id, None


def _record(
    db: AsyncSession,
    row: Row,
    session_id: str | None,
    error: RunError | None,
    scheduled_at: datetime | None,
    now: datetime,
) -> RunRow:
    run = RunRow(
        id=new_id("drun"),
        deployment_id=row.id,
        agent_id=row.agent_id,
        agent_version=row.agent_version,
        session_id=session_id,
        error=error,
        trigger="schedule" if scheduled_at is not None else "manual",
        scheduled_at=scheduled_at,
        created_at=now,
    )
    repository.add(db, run)
    return run


async def _announce(db: AsyncSession, run: RunRow) -> None:
    await webhooks.emit(db, "deployment_run.failed" if run.error else "deployment_run.succeeded", run.id)


async def run_now(db: AsyncSession, notifier: Notifier, deployment_id: str) -> DeploymentRun:
    """A manual run: allowed while paused, not once archived."""
    row = await _load(db, deployment_id, for_update=True)
    _not_archived(row)
    session_id, error = await _start_session(db, notifier, row)
    run = _record(db, row, session_id, error, None, utcnow())
    await db.flush()
    await _announce(db, run)
    return _run_view(run)


async def due_ids(db: AsyncSession, now: datetime, limit: int) -> Sequence[str]:
    rows = await repository.due(db, now, limit)
    return [
        r.id
        for r in rows
        if r.next_slot_at is not None and r.next_slot_at + timedelta(seconds=r.jitter_seconds) <= now
    ]


async def seconds_until_due(db: AsyncSession, within_seconds: float) -> float | None:
    """How long until the next slot fires (its jitter included; 0 or less: one is due), if one
    fires within ``within_seconds`` (a slot's jitter is at most ``Timing.max_jitter_seconds``)."""
    now = utcnow()
    horizon = now + timedelta(seconds=within_seconds)
    fires = [slot + timedelta(seconds=jitter) for slot, jitter in await repository.upcoming(db, horizon)]
    due = [f for f in fires if f <= horizon]
    return (min(due) - now).total_seconds() if due else None


async def fire_if_due(
    db: AsyncSession, notifier: Notifier, deployment_id: str, timing: Timing
) -> DeploymentRun | None:
    """Fire the deployment's due slot, if this process wins it; None when there was nothing to do."""
    row = await _load(db, deployment_id)
    now = utcnow()
    slot, expression, zone = row.next_slot_at, row.schedule_expression, row.schedule_timezone
    if slot is None or expression is None or zone is None or row.status != "active" or row.archived_at:
        return None
    if slot + timedelta(seconds=row.jitter_seconds) > now:
        return None
    latest = max(slot, cron.latest_at_or_before(expression, zone, now))  # at most one catch-up
    following = cron.slots_after(expression, zone, latest, 1)[0]
    if not await repository.advance_slot(db, row.id, slot, following):
        return None  # another process fired it
    row.next_slot_at = following
    if (now - latest).total_seconds() > timing.missed_grace_seconds + row.jitter_seconds:
        await db.flush()
        return None  # missed while no server ran, and too long ago to make up
    session_id, error = await _start_session(db, notifier, row)
    run = _record(db, row, session_id, error, latest, now)
    row.last_run_at = now
    if error is not None and error["type"] in _PAUSING_ERRORS:
        row.status, row.paused_reason = "paused", {"type": "error", "error": {"type": error["type"]}}
        row.updated_at = now
        await webhooks.emit(db, "deployment.paused", row.id)
    await db.flush()
    await _announce(db, run)
    return _run_view(run)
