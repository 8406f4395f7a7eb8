"""/v1/agents: create, retrieve, update, list, archive, and list versions."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response

from app.agents import service
from app.agents.schemas import Agent, AgentCreate, AgentPage, AgentUpdate
from app.api.deps import DatabaseDep, ReadSession, WriteSession
from app.api.fastpath import FastRead, QueryArgs, int_value, json_response
from app.api.query import range_param
from app.db.engine import Database
from app.shared.validation import INT32_MAX

router = APIRouter(prefix="/agents", tags=["agents"])

Limit = Annotated[int, Query(ge=1, le=100)]
CreatedAt = Annotated[dict[str, datetime], Depends(range_param("created_at", ("gte", "lte")))]


@router.post("", response_model=Agent)
async def create_agent(body: AgentCreate, db: WriteSession) -> Agent:
    """Create an agent; its first version is 1."""
    return await service.create(db, body)


@router.get("", response_model=AgentPage)
async def list_agents(
    db: ReadSession,
    created_at: CreatedAt,
    include_archived: bool = False,
    limit: Limit = 20,
    page: str | None = None,
) -> AgentPage:
    """List agents, newest first."""
    return await service.list_agents(
        db, created_at=created_at, include_archived=include_archived, limit=limit, page=page
    )


@router.get("/{agent_id}", response_model=Agent)
async def retrieve_agent(
    agent_id: str, db: DatabaseDep, version: Annotated[int | None, Query(ge=1, le=INT32_MAX)] = None
) -> Response:
    """Retrieve an agent at its latest version, or at `version`."""
    return json_response(await service.render(db.raw, agent_id, version))


def _version_query(query: Mapping[str, str]) -> QueryArgs | None:
    if not query.keys() <= {"version"}:
        return None
    version = int_value(query["version"], 1, INT32_MAX) if "version" in query else None
    return None if "version" in query and version is None else {"version": version}


async def _render_agent(db: Database, agent_id: str, version: int | None) -> bytes:
    return await service.render(db.raw, agent_id, version)


# Served by app.api.fastpath before FastAPI's router (the same bytes as the route above).
FAST_READS = (FastRead("/agents/{agent_id}", _render_agent, _version_query),)


@router.post("/{agent_id}", response_model=Agent)
async def update_agent(agent_id: str, body: AgentUpdate, db: WriteSession) -> Agent:
    """Update an agent; a change makes a new version."""
    return await service.update(db, agent_id, body)


@router.post("/{agent_id}/archive", response_model=Agent)
async def archive_agent(agent_id: str, db: WriteSession) -> Agent:
    """Archive an agent: it stays readable but cannot be changed or used by new sessions."""
    return await service.archive(db, agent_id)


@router.get("/{agent_id}/versions", response_model=AgentPage)
async def list_agent_versions(
    agent_id: str, db: ReadSession, limit: Limit = 20, page: str | None = None
) -> AgentPage:
    """List an agent's versions, newest first."""
    return await service.list_versions(db, agent_id, limit=limit, page=page)
