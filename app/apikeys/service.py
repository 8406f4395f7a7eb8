"""API keys made with `mas keys create`: shown once, stored as SHA-256 only."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from app.apikeys import repository
from app.db.base import utcnow
from app.db.models import ApiKey
from app.errors import NotFound
from app.ids import new_id

KEY_PREFIX = "sk-mas-"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def is_static_key(key: str, static_keys: Sequence[str]) -> bool:
    return any(hmac.compare_digest(key.encode(), k.encode()) for k in static_keys)


def static_key_id(key: str) -> str:
    """A stable id for a key from ``MAS_API_KEYS`` (such keys have no row): it names the key in
    audit records (memory versions) without revealing it."""
    return "apikey_static_" + hash_key(key)[:16]


async def stored_key_id(db: AsyncSession, key: str) -> str | None:
    """The id of the active stored key ``key``, or None."""
    row = await repository.find_active_by_hash(db, hash_key(key))
    return row.id if row is not None else None


async def create(db: AsyncSession, name: str) -> tuple[ApiKey, str]:
    """Returns the stored row and the clear key, which is never stored or shown again."""
    secret = KEY_PREFIX + secrets.token_urlsafe(32)
    row = ApiKey(
        id=new_id("apikey"),
        name=name,
        key_hash=hash_key(secret),
        hint=secret[: len(KEY_PREFIX) + 4] + "..." + secret[-4:],
        created_at=utcnow(),
        revoked_at=None,
    )
    repository.add(db, row)
    await db.flush()
    return row, secret


async def list_keys(db: AsyncSession) -> Sequence[ApiKey]:
    return await repository.list_all(db)


async def revoke(db: AsyncSession, key_id: str) -> ApiKey:
    row = await repository.get(db, key_id)
    if row is None:
        raise NotFound(f"API key {key_id} not found")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
    await db.flush()
    return row
