"""SQL for sessions, including the worker's leases."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import BigInteger, Select, Table, bindparam, func, or_, select, tuple_, update
from sqlalchemy import delete as delete_
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.base import utcnow
from app.db.models import Session
from app.db.models.session import LISTED
from app.db.raw import RawConnection, RawReads, Row, json_value, timestamp
from app.db.session_json import Budget, ResourceJson, StoredOutcomeEvaluation, UsageTotals
from app.sessions.schemas import zero_usage
from app.shared.agent_config import SessionAgent

_SESSIONS = cast(Table, Session.__table__)
# Built once (SQLAlchemy then reuses their compiled form): a fenced append's one statement on the
# row, and the lock a thread's step takes on its session first.
_FENCED_SEQS = (
    update(_SESSIONS)
    .where(_SESSIONS.c.id == bindparam("sid"), _SESSIONS.c.lease_token == bindparam("token"))
    .values(last_seq=_SESSIONS.c.last_seq + bindparam("count", type_=BigInteger))
    .returning(_SESSIONS.c.last_seq)
)
_FENCED_SEQS_TOOLS_DONE = _FENCED_SEQS.values(inflight_tool_ids=[])
_LOCK = select(_SESSIONS.c.id).where(_SESSIONS.c.id == bindparam("sid")).with_for_update()


async def fenced_seqs(
    db: AsyncSession, session_id: str, token: int, count: int, *, tools_finished: bool
) -> int | None:
    """Reserve ``count`` log positions if the lease token still matches (the last one; None when
    it does not), locking the row until commit; ``tools_finished``: no call is in flight any more."""
    stmt = _FENCED_SEQS_TOOLS_DONE if tools_finished else _FENCED_SEQS
    result = await db.execute(stmt, {"sid": session_id, "token": token, "count": count})
    last = result.scalar_one_or_none()
    return None if last is None else int(last)


async def lock(db: AsyncSession, session_id: str) -> None:
    """Lock the row until commit (PostgreSQL; SQLite has one writer and renders no lock)."""
    await db.execute(_LOCK, {"sid": session_id})


@dataclass(frozen=True, slots=True)
class SessionColumns:
    """What a session shows (``service.to_out``), read without an ORM instance."""

    id: str
    agent: SessionAgent
    environment_id: str
    status: str
    title: str | None
    metadata_: dict[str, str]
    resources: list[ResourceJson]
    vault_ids: list[str]
    outcome_evaluations: list[StoredOutcomeEvaluation] | None
    usage: UsageTotals
    active_seconds: float
    running_since: datetime | None
    created_at: datetime
    updated_at: datetime
    archived_at: datetime | None
    terminated_at: datetime | None
    deployment_id: str | None
    budget: Budget | None


SHOWN = (
    "id, agent, environment_id, status, title, metadata, resources, vault_ids, outcome_evaluations, "
    "usage, active_seconds, running_since, created_at, updated_at, archived_at, terminated_at, "
    "deployment_id, budget"
)


def columns(row: Row) -> SessionColumns:
    """A plain row of ``SHOWN`` as ``SessionColumns``."""
    (id_, agent, environment_id, status, title, metadata, resources, vault_ids, outcome_evaluations, usage,
     active_seconds, running_since, created_at, updated_at, archived_at, terminated_at, deployment_id,
     budget) = row  # fmt: skip
    return SessionColumns(
        id=id_,
        agent=json_value(agent),
        environment_id=environment_id,
        status=status,
        title=title,
        metadata_=json_value(metadata),
        resources=json_value(resources),
        vault_ids=json_value(vault_ids),
        outcome_evaluations=json_value(outcome_evaluations),
        usage=json_value(usage),
        active_seconds=float(active_seconds or 0.0),
        running_since=timestamp(running_since),
        created_at=_aware(created_at),
        updated_at=_aware(updated_at),
        archived_at=timestamp(archived_at),
        terminated_at=timestamp(terminated_at),
        deployment_id=deployment_id,
        budget=json_value(budget),
    )


def _aware(value: Any) -> datetime:
    found = timestamp(value)
    assert found is not None, "a NOT NULL timestamp"
    return found


async def shown_versions(
    raw: RawReads, *, after: tuple[datetime, str] | None, descending: bool, limit: int
) -> list[Row]:
    """A keyset page of the sessions list without filters (not archived, no threads), as
    ``page(list_query(...))`` reads it, as (id, row_version, created_at) only: a session's JSON
    is kept by (id, row_version) (a trigger moves the version on every UPDATE of the row)."""
    args = [] if after is None else [raw.time_param(after[0]), after[1]]
    return await raw.fetch(shown_versions_sql(raw, after is not None, descending), *args, limit)


def shown_versions_sql(raw: RawReads, after: bool, descending: bool) -> str:
    """``shown_versions``'s statement: the next entries of ``ix_sessions_listed`` (named on SQLite,
    whose planner would otherwise take the parent_session_id index and sort every session);
    ``after``: the page starts after a (created_at, id), parameters $1 and $2."""
    conds = [LISTED]
    if after:
        conds.append(f"(created_at, id) {'<' if descending else '>'} ($1, $2)")
    direction = "DESC" if descending else "ASC"
    hint = " INDEXED BY ix_sessions_listed" if raw.on_sqlite else ""
    return (
        f"SELECT id, row_version, created_at FROM sessions{hint} WHERE {' AND '.join(conds)} "
        f"ORDER BY created_at {direction}, id {direction} LIMIT ${3 if after else 1}"
    )


async def shown_rows(raw: RawReads, ids: Sequence[str]) -> list[Row]:
    """The rows of ``ids`` as ``SHOWN`` plus their row_version last, in no order."""
    marks = ", ".join(f"${n}" for n in range(1, len(ids) + 1))
    return await raw.fetch(f"SELECT {SHOWN}, row_version FROM sessions WHERE id IN ({marks})", *ids)


async def child_usages(raw: RawReads, session_id: str) -> list[UsageTotals]:
    """The usage of each child thread of ``session_id``, in the order of ``children``."""
    rows = await raw.fetch(
        "SELECT usage FROM sessions WHERE parent_session_id = $1 ORDER BY created_at, id", session_id
    )
    return [json_value(row[0]) for row in rows]


async def exists(conn: RawConnection, session_id: str) -> bool:
    """Whether ``session_id`` is a session (a thread's row is not)."""
    row = await conn.fetchrow("SELECT parent_session_id FROM sessions WHERE id = $1", session_id)
    return row is not None and row[0] is None


async def stream_seq(conn: RawConnection, session_id: str) -> int | None:
    """The stream watermark of ``session_id``; None unless it is a session (a thread's row is not)."""
    row = await conn.fetchrow("SELECT stream_seq, parent_session_id FROM sessions WHERE id = $1", session_id)
    return int(row[0] or 0) if row is not None and row[1] is None else None


async def get(db: AsyncSession, session_id: str, *, for_update: bool = False) -> Session | None:
    stmt = select(Session).where(Session.id == session_id)
    if for_update:  # rendered on PostgreSQL; SQLite has one writer and SQLAlchemy omits it
        stmt = stmt.with_for_update()
    return await db.scalar(stmt)


def new_row(
    *,
    id: str,
    agent_id: str,
    agent_version: int,
    agent: SessionAgent,
    environment_id: str,
    vault_ids: list[str],
    title: str | None = None,
    metadata_: dict[str, str] | None = None,
    deployment_id: str | None = None,
    budget: Budget | None = None,
    parent_session_id: str | None = None,
    workflow_run_id: str | None = None,
) -> Session:
    """A new idle session or thread row with every counter and list at its start value."""
    now = utcnow()
    return Session(
        id=id,
        agent_id=agent_id,
        agent_version=agent_version,
        agent=agent,
        environment_id=environment_id,
        vault_ids=vault_ids,
        status="idle",
        title=title,
        metadata_=metadata_ or {},
        resources=[],
        usage=zero_usage(),
        pending_action_ids=[],
        inflight_tool_ids=[],
        active_seconds=0.0,
        created_at=now,
        updated_at=now,
        last_seq=0,
        stream_seq=0,
        lease_token=0,
        deployment_id=deployment_id,
        budget=budget,
        budget_removed=False,
        parent_session_id=parent_session_id,
        workflow_run_id=workflow_run_id,
        outcome_evaluations=[],
    )


def add(db: AsyncSession, row: Session) -> None:
    db.add(row)


async def delete(db: AsyncSession, row: Session) -> None:
    await db.delete(row)


def list_query(
    *,
    agent_id: str | None,
    agent_version: int | None,
    statuses: Sequence[str] | None,
    include_archived: bool,
    ranges: dict[str, datetime],
    deployment_id: str | None = None,
) -> Select[Session]:
    conds = []
    if deployment_id is not None:
        conds.append(Session.deployment_id == deployment_id)
    if agent_id is not None:
        conds.append(Session.agent_id == agent_id)
    if agent_version is not None:
        conds.append(Session.agent_version == agent_version)
    if statuses:
        conds.append(Session.status.in_(statuses))
    if not include_archived:
        conds.append(Session.archived_at.is_(None))
    conds.append(Session.parent_session_id.is_(None))  # threads are listed under their session
    ops = {"gt": "__gt__", "gte": "__ge__", "lt": "__lt__", "lte": "__le__"}
    conds.extend(getattr(Session.created_at, ops[op])(value) for op, value in ranges.items())
    return select(Session).where(*conds)


async def page(
    db: AsyncSession,
    stmt: Select[Session],
    *,
    after: tuple[datetime, str] | None,
    descending: bool,
    limit: int,
) -> Sequence[Session]:
    """Keyset page on (created_at, id); `descending` is the direction of travel."""
    key = tuple_(Session.created_at, Session.id)
    if after is not None:
        stmt = stmt.where(key < after if descending else key > after)
    order = (Session.created_at.desc(), Session.id.desc()) if descending else (Session.created_at, Session.id)
    return (await db.scalars(stmt.order_by(*order).limit(limit))).all()


# -- worker leases -----------------------------------------------------------------------------
async def runnable_ids(db: AsyncSession, now: datetime, limit: int) -> Sequence[str]:
    stmt = (
        select(Session.id)
        .where(
            Session.wake_at.is_not(None),
            Session.wake_at <= now,
            or_(Session.lease_expires_at.is_(None), Session.lease_expires_at < now),
        )
        .order_by(Session.wake_at)
        .limit(limit)
    )
    # SKIP LOCKED lets workers claim side by side on PostgreSQL; SQLAlchemy omits it on SQLite.
    stmt = stmt.with_for_update(skip_locked=True)
    return (await db.scalars(stmt)).all()


async def next_runnable_at(db: AsyncSession, now: datetime) -> datetime | None:
    """When a session next becomes runnable: the earliest `wake_at` no live lease holds, or the
    earliest expiry of a lease on a session with a `wake_at` (its worker may have died)."""
    unleased = select(func.min(Session.wake_at)).where(
        Session.wake_at.is_not(None),
        or_(Session.lease_expires_at.is_(None), Session.lease_expires_at < now),
    )
    leased = select(func.min(Session.lease_expires_at)).where(
        Session.wake_at.is_not(None), Session.lease_expires_at >= now
    )
    row = (await db.execute(select(unleased.scalar_subquery(), leased.scalar_subquery()))).one()
    times = [t for t in row if t is not None]
    return min(times) if times else None


async def take_lease(
    db: AsyncSession, session_id: str, owner: str, now: datetime, expires: datetime
) -> tuple[int, str | None] | None:
    """Claim the lease if it is free or expired; returns the new fencing token (and the parent
    session of a thread row)."""
    result = await db.execute(
        update(Session)
        .where(
            Session.id == session_id,
            or_(Session.lease_expires_at.is_(None), Session.lease_expires_at < now),
        )
        .values(lease_owner=owner, lease_token=Session.lease_token + 1, lease_expires_at=expires)
        .returning(Session.lease_token, Session.parent_session_id)
    )
    found = result.one_or_none()
    return (int(found[0]), found[1]) if found is not None else None


async def extend_lease(db: AsyncSession, session_id: str, token: int, expires: datetime) -> bool:
    result = await db.execute(
        update(Session)
        .where(Session.id == session_id, Session.lease_token == token)
        .values(lease_expires_at=expires)
        .returning(Session.id)
    )
    return result.scalar_one_or_none() is not None


# Built once, on the table (not the entity): no ORM bulk-update pass, only the values bound.
_ADVANCE_STREAM_SEQ = (
    update(_SESSIONS)
    .where(_SESSIONS.c.id == bindparam("sid"), _SESSIONS.c.stream_seq < bindparam("seq"))
    .values(stream_seq=bindparam("seq"))
)


async def advance_stream_seq(db: AsyncSession, session_id: str, seq: int) -> None:
    """A stream's watermark (saved before it sends a turn's end: once per turn per session)."""
    await db.execute(_ADVANCE_STREAM_SEQ, {"sid": session_id, "seq": seq})


async def all_ids(db: AsyncSession) -> Sequence[str]:
    return (await db.scalars(select(Session.id))).all()


async def unterminated(db: AsyncSession) -> Sequence[tuple[str, str]]:
    """(id, environment_id) of every session that may still run."""
    rows = await db.execute(select(Session.id, Session.environment_id).where(Session.status != "terminated"))
    return [(str(session_id), str(environment_id)) for session_id, environment_id in rows]


async def count_by_status(db: AsyncSession) -> dict[str, int]:
    rows = await db.execute(select(Session.status, func.count()).group_by(Session.status))
    return {status: int(count) for status, count in rows}


async def count_runnable(db: AsyncSession, now: datetime) -> int:
    """Sessions due to run that no worker holds (what `runnable_ids` would offer)."""
    stmt = select(func.count()).where(
        Session.wake_at.is_not(None),
        Session.wake_at <= now,
        or_(Session.lease_expires_at.is_(None), Session.lease_expires_at < now),
    )
    return int(await db.scalar(stmt) or 0)


# -- threads: child rows of a multi-agent session ------------------------------------------------
async def children(db: AsyncSession, session_id: str, *, for_update: bool = False) -> Sequence[Session]:
    stmt = (
        select(Session)
        .where(Session.parent_session_id == session_id)
        .order_by(Session.created_at, Session.id)
    )
    if for_update:
        stmt = stmt.with_for_update()
    return (await db.scalars(stmt)).all()


async def delete_children(db: AsyncSession, session_id: str) -> None:
    await db.execute(delete_(Session).where(Session.parent_session_id == session_id))
