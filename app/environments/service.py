"""Environments: the container configuration sessions run in. Services only flush.

Environments are not versioned: an update changes the row, and only containers started after it
see the change. ``get_for_session`` is the check sessions use before they reference one.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from app.db import models
from app.db.base import utcnow
from app.db.raw import RawReads, json_value, timestamp
from app.environments import repository
from app.environments.resolve import resolve_config
from app.environments.schemas import (
    Environment,
    EnvironmentCreate,
    EnvironmentDeleted,
    EnvironmentPage,
    EnvironmentUpdate,
    Scope,
)
from app.errors import InvalidRequest, NotFound
from app.ids import new_id
from app.shared.environment_config import EnvironmentConfig, package_lists
from app.shared.metadata import patch_metadata, validate_metadata
from app.shared.pagination import Cursor, decode_cursor, decode_time_key, encode_cursor, time_key
from app.shared.rendering import model_json

DEFAULT_SCOPE = "organization"


def _view(row: models.Environment) -> Environment:
    return Environment(
        id=row.id,
        name=row.name,
        description=row.description or "",
        config=row.config,
        metadata=row.metadata_,
        scope=row.scope,
        state="archived" if row.archived_at else "active",
        created_at=row.created_at,
        updated_at=row.updated_at,
        archived_at=row.archived_at,
    )


def _scope(scope: Scope | None) -> str:
    # Like an API organization on the hosted service: only organization-wide environments.
    if scope == "account":
        raise InvalidRequest(
            "scope: 'account' is not supported; API organizations support only 'organization'"
        )
    return DEFAULT_SCOPE


def archived_error(environment_id: str) -> InvalidRequest:
    return InvalidRequest(f"Environment {environment_id} is archived.", error_code="environment_archived")


async def _get_row(db: AsyncSession, environment_id: str, *, lock: bool = False) -> models.Environment:
    row = await repository.get(db, environment_id, lock=lock)
    if row is None:
        raise NotFound(f"Environment {environment_id} not found.", error_code="environment_not_found")
    return row


async def create(db: AsyncSession, params: EnvironmentCreate) -> Environment:
    now = utcnow()
    row = models.Environment(
        id=new_id("env"),
        name=params.name,
        description=params.description,
        config=resolve_config(params.config),
        metadata_=validate_metadata(params.metadata or {}),
        scope=_scope(params.scope),
        created_at=now,
        updated_at=now,
        archived_at=None,
    )
    repository.add(db, row)
    await db.flush()
    return _view(row)


async def get(db: AsyncSession, environment_id: str) -> Environment:
    return _view(await _get_row(db, environment_id))


async def render(raw: RawReads, environment_id: str) -> bytes:
    """The body of GET /v1/environments/{environment_id}: ``get``'s environment as JSON."""
    row = await repository.view_row(raw, environment_id)
    if row is None:
        raise NotFound(f"Environment {environment_id} not found.", error_code="environment_not_found")
    id_, name, description, config, metadata, scope, created_at, updated_at, archived_at = row
    view = Environment(
        id=id_,
        name=name,
        description=description or "",
        config=json_value(config),
        metadata=json_value(metadata),
        scope=scope,
        state="archived" if archived_at else "active",
        created_at=timestamp(created_at),
        updated_at=timestamp(updated_at),
        archived_at=timestamp(archived_at),
    )
    return model_json(view)


async def update(db: AsyncSession, environment_id: str, patch: EnvironmentUpdate) -> Environment:
    """Apply the fields sent; an explicit null name or scope changes nothing (neither can be cleared)."""
    row = await _get_row(db, environment_id, lock=True)
    if row.archived_at is not None:
        raise archived_error(row.id)
    sent = patch.model_fields_set
    if patch.name is not None:
        row.name = patch.name
    if "description" in sent:
        row.description = patch.description
    if "config" in sent:
        row.config = resolve_config(patch.config, row.config)
    if "scope" in sent:
        row.scope = _scope(patch.scope)
    if "metadata" in sent:
        row.metadata_ = patch_metadata(row.metadata_, patch.metadata or {}, delete_empty=True)
    row.updated_at = utcnow()
    await db.flush()
    return _view(row)


async def archive(db: AsyncSession, environment_id: str) -> Environment:
    """Archive for good (idempotent): existing sessions keep running, new ones are refused."""
    row = await _get_row(db, environment_id, lock=True)
    if row.archived_at is None:
        row.archived_at = row.updated_at = utcnow()
        await db.flush()
    return _view(row)


async def delete(db: AsyncSession, environment_id: str) -> EnvironmentDeleted:
    """Delete, even when sessions reference it (as observed on the hosted API); they stay readable."""
    row = await _get_row(db, environment_id, lock=True)
    await repository.delete(db, row)
    await db.flush()
    return EnvironmentDeleted(id=environment_id)


def _after(page: str | None) -> tuple[datetime, str] | None:
    return decode_time_key(decode_cursor(page, "desc"))


async def list_environments(
    db: AsyncSession, *, include_archived: bool, limit: int, page: str | None
) -> EnvironmentPage:
    """Newest first, ``limit`` per page, ``next_page`` null on the last page."""
    rows = await repository.list_page(
        db, include_archived=include_archived, after=_after(page), limit=limit + 1
    )
    next_page = None
    if len(rows) > limit:
        last = rows[limit - 1]
        next_page = encode_cursor(Cursor("desc", time_key(last.created_at, last.id)))
    return EnvironmentPage(data=[_view(row) for row in rows[:limit]], next_page=next_page)


async def get_for_session(db: AsyncSession, environment_id: str) -> Environment:
    """The environment a new session will run in.

    Raises NotFound (``environment_not_found``) for an unknown id and InvalidRequest
    ``"Environment env_... is archived."`` (``environment_archived``) for an archived one.
    """
    row = await _get_row(db, environment_id)
    if row.archived_at is not None:
        raise archived_error(row.id)
    return _view(row)


async def sandbox_config(db: AsyncSession, environment_id: str) -> EnvironmentConfig:
    """The config a session's sandbox is built from, as it is now (updates reach containers
    started later). A deleted environment leaves its sessions with the default cloud config."""
    found = await repository.config(db, environment_id)
    if found is None:
        return {"type": "cloud", "networking": {"type": "unrestricted"}, "packages": {}}
    return found


async def needed_packages(db: AsyncSession, in_use: set[str]) -> list[dict[str, list[str]]]:
    """The package specs whose images are still needed: of every environment not archived, and
    of the archived ones in `in_use` (their sessions may still start a sandbox)."""
    configs = await repository.configs(db, live_or=in_use)
    return [package_lists(config["packages"]) for config in configs if config["type"] == "cloud"]


async def config_type(db: AsyncSession, environment_id: str) -> str:
    """`cloud` or `self_hosted` (`cloud` once the environment is deleted)."""
    return (await sandbox_config(db, environment_id))["type"]
