"""Vaults: create, read, update, archive, delete. Services only flush.

An archived vault takes no new credentials and no changes, and no new session can reference it;
sessions that already do keep using its active credentials. Deleting a vault deletes its
credentials. Credentials live in ``credentials``.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from app.db import models
from app.db.base import utcnow
from app.errors import InvalidRequest, NotFound
from app.ids import new_id
from app.shared.metadata import patch_metadata, validate_metadata
from app.shared.pagination import decode_cursor, decode_time_key, newest_first_page
from app.shared.text import check_single_line
from app.vaults import repository
from app.vaults.schemas import Vault, VaultCreate, VaultDeleted, VaultPage, VaultUpdate


def view(row: models.Vault) -> Vault:
    return Vault(
        id=row.id,
        display_name=row.display_name,
        metadata=row.metadata_,
        created_at=row.created_at,
        updated_at=row.updated_at,
        archived_at=row.archived_at,
    )


async def get_row(db: AsyncSession, vault_id: str, *, lock: bool = False) -> models.Vault:
    row = await repository.get_vault(db, vault_id, lock=lock)
    if row is None:
        raise NotFound(f"Vault {vault_id} not found.")
    return row


def archived_error(vault_id: str) -> InvalidRequest:
    return InvalidRequest(f"Vault {vault_id} is archived.")


async def create(db: AsyncSession, params: VaultCreate) -> Vault:
    now = utcnow()
    row = models.Vault(
        id=new_id("vlt"),
        display_name=check_single_line(params.display_name, "display_name"),
        metadata_=validate_metadata(params.metadata or {}),
        created_at=now,
        updated_at=now,
        archived_at=None,
    )
    repository.add(db, row)
    await db.flush()
    return view(row)


async def get(db: AsyncSession, vault_id: str) -> Vault:
    return view(await get_row(db, vault_id))


async def update(db: AsyncSession, vault_id: str, patch: VaultUpdate) -> Vault:
    """A null display_name changes nothing; metadata is a patch (a string upserts, null deletes)."""
    row = await get_row(db, vault_id, lock=True)
    if row.archived_at is not None:
        raise archived_error(row.id)
    before = (row.display_name, dict(row.metadata_))
    if patch.display_name is not None:
        row.display_name = check_single_line(patch.display_name, "display_name")
    if patch.metadata is not None:
        row.metadata_ = patch_metadata(row.metadata_, patch.metadata)
    if (row.display_name, row.metadata_) != before:
        row.updated_at = utcnow()
    await db.flush()
    return view(row)


async def archive(db: AsyncSession, vault_id: str) -> Vault:
    """Archive for good (idempotent)."""
    row = await get_row(db, vault_id, lock=True)
    if row.archived_at is None:
        row.archived_at = row.updated_at = utcnow()
        await db.flush()
    return view(row)


async def delete(db: AsyncSession, vault_id: str) -> VaultDeleted:
    row = await get_row(db, vault_id, lock=True)
    await repository.delete_vault(db, row.id)
    await db.flush()
    return VaultDeleted(id=vault_id)


async def list_vaults(db: AsyncSession, *, include_archived: bool, limit: int, page: str | None) -> VaultPage:
    rows = await repository.list_vaults(
        db,
        include_archived=include_archived,
        after=decode_time_key(decode_cursor(page, "desc")),
        limit=limit + 1,
    )
    shown, next_page = newest_first_page(rows, limit)
    return VaultPage(data=[view(r) for r in shown], next_page=next_page)


async def check_session_vaults(db: AsyncSession, vault_ids: Sequence[str]) -> list[str]:
    """The ``vault_ids`` of a new session: each must exist, not be archived, and appear once."""
    for i, vault_id in enumerate(vault_ids):
        if vault_id in vault_ids[:i]:
            raise InvalidRequest(f"vault_ids[{i}]: {vault_id} is listed twice")
    if not vault_ids:
        return []  # most sessions: no statement
    found = {row.id: row for row in await repository.get_vaults(db, vault_ids)}
    for i, vault_id in enumerate(vault_ids):
        row = found.get(vault_id)
        if row is None:
            raise NotFound(f"vault_ids[{i}]: Vault {vault_id} not found.")
        if row.archived_at is not None:
            raise InvalidRequest(f"vault_ids[{i}]: Vault {vault_id} is archived.")
    return list(vault_ids)
