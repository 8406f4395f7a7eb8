"""/v1/environments: create, retrieve, update, list, archive, delete."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from app.api.deps import DatabaseDep, ReadSession, WriteSession
from app.api.fastpath import FastRead, json_response
from app.db.engine import Database
from app.environments import service
from app.environments.schemas import (
    Environment,
    EnvironmentCreate,
    EnvironmentDeleted,
    EnvironmentPage,
    EnvironmentUpdate,
)

router = APIRouter(prefix="/environments", tags=["environments"])

Limit = Annotated[int, Query(ge=1, le=100)]


@router.post("", response_model=Environment)
async def create_environment(body: EnvironmentCreate, db: WriteSession) -> Environment:
    """Create an environment (cloud with unrestricted networking unless `config` says otherwise)."""
    return await service.create(db, body)


@router.get("", response_model=EnvironmentPage)
async def list_environments(
    db: ReadSession, include_archived: bool = False, limit: Limit = 20, page: str | None = None
) -> EnvironmentPage:
    """List environments, newest first."""
    return await service.list_environments(db, include_archived=include_archived, limit=limit, page=page)


@router.get("/{environment_id}", response_model=Environment)
async def retrieve_environment(environment_id: str, db: DatabaseDep) -> Response:
    """Retrieve an environment."""
    return json_response(await service.render(db.raw, environment_id))


async def _render_environment(db: Database, environment_id: str) -> bytes:
    return await service.render(db.raw, environment_id)


# Served by app.api.fastpath before FastAPI's router (the same bytes as the route above).
FAST_READS = (FastRead("/environments/{environment_id}", _render_environment),)


@router.post("/{environment_id}", response_model=Environment)
async def update_environment(environment_id: str, body: EnvironmentUpdate, db: WriteSession) -> Environment:
    """Update an environment; omitted fields keep their value."""
    return await service.update(db, environment_id, body)


@router.post("/{environment_id}/archive", response_model=Environment)
async def archive_environment(environment_id: str, db: WriteSession) -> Environment:
    """Archive an environment: new sessions can no longer use it."""
    return await service.archive(db, environment_id)


@router.delete("/{environment_id}", response_model=EnvironmentDeleted)
async def delete_environment(environment_id: str, db: WriteSession) -> EnvironmentDeleted:
    """Delete an environment."""
    return await service.delete(db, environment_id)
