"""/v1/environments/{environment_id}/keys: environment keys for self-hosted workers."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from app.api.auth import KeyCacheDep
from app.api.deps import ReadSession, WriteSession
from app.db.engine import after_commit
from app.envkeys import service
from app.envkeys.schemas import EnvironmentKey, EnvironmentKeyCreate, EnvironmentKeyPage

router = APIRouter(prefix="/environments/{environment_id}/keys", tags=["environment keys"])

Limit = Annotated[int, Query(ge=1, le=100)]


@router.post("", response_model=EnvironmentKey)
async def create_key(
    environment_id: str, db: WriteSession, body: EnvironmentKeyCreate | None = None
) -> EnvironmentKey:
    """Create an environment key; the key is in this response only (it is stored hashed)."""
    return await service.create(db, environment_id, body or EnvironmentKeyCreate())


@router.get("", response_model=EnvironmentKeyPage)
async def list_keys(
    environment_id: str, db: ReadSession, limit: Limit = 20, page: str | None = None
) -> EnvironmentKeyPage:
    """List the environment's keys (never the keys themselves), newest first."""
    return await service.list_keys(db, environment_id, limit=limit, page=page)


@router.post("/{key_id}/revoke", response_model=EnvironmentKey)
async def revoke_key(
    environment_id: str, key_id: str, db: WriteSession, keys: KeyCacheDep
) -> EnvironmentKey:
    """Revoke an environment key: workers using it are refused at once (within seconds by other
    API processes)."""
    after_commit(db, lambda: keys.forget(key_id))
    return await service.revoke(db, environment_id, key_id)
