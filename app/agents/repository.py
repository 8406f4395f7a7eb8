"""Agent rows and their immutable versions. Queries only; the caller owns the transaction."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Select, and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import Agent, AgentVersion
from app.db.raw import RawReads, Row


async def get(db: AsyncSession, agent_id: str) -> Agent | None:
    return await db.get(Agent, agent_id)


async def get_for_update(db: AsyncSession, agent_id: str) -> Agent | None:
    """The agent row locked until commit (PostgreSQL), so concurrent updates serialise and the
    version precondition is checked against the latest committed version."""
    return await db.scalar(select(Agent).where(Agent.id == agent_id).with_for_update())


async def get_version(db: AsyncSession, agent_id: str, version: int) -> AgentVersion | None:
    return await db.get(AgentVersion, (agent_id, version))


async def get_with_version(
    db: AsyncSession, agent_id: str, version: int | None
) -> tuple[Agent | None, AgentVersion | None]:
    """The agent and its version ``version`` (default: its latest) in one statement: (None, None)
    when the agent does not exist, (agent, None) when the version does not."""
    wanted = AgentVersion.version == (version if version is not None else Agent.version)
    stmt = (
        select(Agent, AgentVersion)
        .outerjoin(AgentVersion, and_(AgentVersion.agent_id == Agent.id, wanted))
        .where(Agent.id == agent_id)
    )
    found = (await db.execute(stmt)).first()
    return (found[0], found[1]) if found is not None else (None, None)


# The agent row and its version (the latest unless $2): one statement; NULL version columns when
# the version does not exist, no row when the agent does not.
_VIEW_SQL = (
    "SELECT a.version, a.created_at, a.updated_at, a.archived_at, v.version, v.config, v.created_at "
    "FROM agents a LEFT JOIN agent_versions v ON v.agent_id = a.id AND v.version = COALESCE($2, a.version) "
    "WHERE a.id = $1"
)


async def view_row(raw: RawReads, agent_id: str, version: int | None) -> Row | None:
    """(version, created_at, updated_at, archived_at, version's version, config text, version's
    created_at) of ``agent_id`` at ``version`` (default: its latest), in one statement."""
    return await raw.fetchrow(_VIEW_SQL, agent_id, version)


def add(db: AsyncSession, row: Agent | AgentVersion) -> None:
    db.add(row)


def _latest() -> Select[Agent, AgentVersion]:
    return select(Agent, AgentVersion).join(
        AgentVersion, and_(AgentVersion.agent_id == Agent.id, AgentVersion.version == Agent.version)
    )


async def list_page(
    db: AsyncSession,
    *,
    created_at: dict[str, datetime],
    include_archived: bool,
    after: tuple[datetime, str] | None,
    limit: int,
) -> Sequence[tuple[Agent, AgentVersion]]:
    """Newest first; ``after`` is the (created_at, id) of the last row of the previous page."""
    query = _latest()
    if "gte" in created_at:
        query = query.where(Agent.created_at >= created_at["gte"])
    if "lte" in created_at:
        query = query.where(Agent.created_at <= created_at["lte"])
    if not include_archived:
        query = query.where(Agent.archived_at.is_(None))
    if after is not None:
        query = query.where(
            or_(Agent.created_at < after[0], and_(Agent.created_at == after[0], Agent.id < after[1]))
        )
    query = query.order_by(Agent.created_at.desc(), Agent.id.desc()).limit(limit)
    return [(row[0], row[1]) for row in (await db.execute(query)).all()]


async def list_versions(
    db: AsyncSession, agent_id: str, *, before: int | None, limit: int
) -> Sequence[AgentVersion]:
    """Newest first; ``before`` is the last version number of the previous page."""
    query = select(AgentVersion).where(AgentVersion.agent_id == agent_id)
    if before is not None:
        query = query.where(AgentVersion.version < before)
    return (await db.scalars(query.order_by(AgentVersion.version.desc()).limit(limit))).all()
