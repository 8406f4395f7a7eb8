"""Environment keys: a self-hosted worker's credential, scoped to one environment.

Shown once at creation and stored as SHA-256 only, like API keys. A key authenticates the work
queue of its environment and the sessions that run there; `app.api.scopes` enforces the scope.
"""

from __future__ import annotations

import secrets

from sqlalchemy.ext.asyncio import AsyncSession

from app.apikeys.service import hash_key
from app.db.base import utcnow
from app.db.models import EnvironmentKey as EnvironmentKeyRow
from app.environments import service as environments
from app.envkeys import repository
from app.envkeys.schemas import EnvironmentKey, EnvironmentKeyCreate, EnvironmentKeyPage
from app.errors import InvalidRequest, NotFound
from app.ids import new_id
from app.shared.pagination import decode_cursor, decode_time_key, newest_first_page

KEY_PREFIX = "sk-mas-env-"


def _view(row: EnvironmentKeyRow, key: str | None = None) -> EnvironmentKey:
    return EnvironmentKey(
        id=row.id,
        environment_id=row.environment_id,
        name=row.name,
        hint=row.hint,
        created_at=row.created_at,
        revoked_at=row.revoked_at,
        key=key,
    )


async def create(db: AsyncSession, environment_id: str, params: EnvironmentKeyCreate) -> EnvironmentKey:
    """A new key for a self-hosted environment; the response is the only place the key appears."""
    environment = await environments.get(db, environment_id)
    if environment.archived_at is not None:
        raise environments.archived_error(environment_id)
    if environment.config.get("type") != "self_hosted":
        raise InvalidRequest(
            f"Environment {environment_id} is not self_hosted; only self_hosted environments have keys"
        )
    secret = KEY_PREFIX + secrets.token_urlsafe(32)
    row = EnvironmentKeyRow(
        id=new_id("envkey"),
        environment_id=environment_id,
        name=params.name,
        key_hash=hash_key(secret),
        hint=secret[: len(KEY_PREFIX) + 4] + "..." + secret[-4:],
        created_at=utcnow(),
        revoked_at=None,
    )
    repository.add(db, row)
    await db.flush()
    return _view(row, secret)


async def list_keys(
    db: AsyncSession, environment_id: str, *, limit: int, page: str | None
) -> EnvironmentKeyPage:
    await environments.get(db, environment_id)
    after = decode_time_key(decode_cursor(page, "desc"))
    rows, next_page = newest_first_page(
        await repository.list_page(db, environment_id, after, limit + 1), limit
    )
    return EnvironmentKeyPage(data=[_view(r) for r in rows], next_page=next_page)


async def revoke(db: AsyncSession, environment_id: str, key_id: str) -> EnvironmentKey:
    row = await repository.get(db, key_id)
    if row is None or row.environment_id != environment_id:
        raise NotFound(f"Environment key {key_id} not found")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
    await db.flush()
    return _view(row)


async def environment_of(db: AsyncSession, key: str) -> tuple[str, str] | None:
    """(key id, environment id) of the active key ``key``, or None."""
    if not key.startswith(KEY_PREFIX):
        return None
    row = await repository.find_by_hash(db, hash_key(key))
    if row is None or row.revoked_at is not None:
        return None
    return row.id, row.environment_id
