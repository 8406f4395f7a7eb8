"""Vault and credential rows. Queries only; the caller owns the transaction."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import and_, delete, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import Vault, VaultCredential


def add(db: AsyncSession, row: Vault | VaultCredential) -> None:
    db.add(row)


async def get_vault(db: AsyncSession, vault_id: str, *, lock: bool = False) -> Vault | None:
    query = select(Vault).where(Vault.id == vault_id)
    return await db.scalar(query.with_for_update() if lock else query)


async def get_vaults(db: AsyncSession, vault_ids: Sequence[str]) -> Sequence[Vault]:
    return (await db.scalars(select(Vault).where(Vault.id.in_(vault_ids)))).all()


async def delete_vault(db: AsyncSession, vault_id: str) -> None:
    await db.execute(delete(VaultCredential).where(VaultCredential.vault_id == vault_id))
    await db.execute(delete(Vault).where(Vault.id == vault_id))


async def list_vaults(
    db: AsyncSession, *, include_archived: bool, after: tuple[datetime, str] | None, limit: int
) -> Sequence[Vault]:
    """Newest first; ``after`` is the (created_at, id) of the last row of the previous page."""
    query = select(Vault)
    if not include_archived:
        query = query.where(Vault.archived_at.is_(None))
    if after is not None:
        query = query.where(
            or_(Vault.created_at < after[0], and_(Vault.created_at == after[0], Vault.id < after[1]))
        )
    return (await db.scalars(query.order_by(Vault.created_at.desc(), Vault.id.desc()).limit(limit))).all()


async def get_credential(
    db: AsyncSession, vault_id: str, credential_id: str, *, lock: bool = False
) -> VaultCredential | None:
    query = select(VaultCredential).where(
        VaultCredential.vault_id == vault_id, VaultCredential.id == credential_id
    )
    return await db.scalar(query.with_for_update() if lock else query)


async def count_active(db: AsyncSession, vault_id: str) -> int:
    query = select(func.count()).where(
        VaultCredential.vault_id == vault_id, VaultCredential.archived_at.is_(None)
    )
    return int(await db.scalar(query) or 0)


async def active_with_key(db: AsyncSession, vault_id: str, match_key: str) -> VaultCredential | None:
    query = select(VaultCredential).where(
        VaultCredential.vault_id == vault_id,
        VaultCredential.match_key == match_key,
        VaultCredential.archived_at.is_(None),
    )
    return await db.scalar(query.limit(1))


async def active_in_vaults(db: AsyncSession, vault_ids: Sequence[str]) -> Sequence[VaultCredential]:
    """The active credentials of these vaults (archived vaults included: sessions keep theirs)."""
    query = select(VaultCredential).where(
        VaultCredential.vault_id.in_(vault_ids), VaultCredential.archived_at.is_(None)
    )
    return (await db.scalars(query)).all()


async def delete_credential(db: AsyncSession, credential_id: str) -> None:
    await db.execute(delete(VaultCredential).where(VaultCredential.id == credential_id))


async def list_credentials(
    db: AsyncSession,
    vault_id: str,
    *,
    include_archived: bool,
    after: tuple[datetime, str] | None,
    limit: int,
) -> Sequence[VaultCredential]:
    query = select(VaultCredential).where(VaultCredential.vault_id == vault_id)
    if not include_archived:
        query = query.where(VaultCredential.archived_at.is_(None))
    if after is not None:
        query = query.where(
            or_(
                VaultCredential.created_at < after[0],
                and_(VaultCredential.created_at == after[0], VaultCredential.id < after[1]),
            )
        )
    query = query.order_by(VaultCredential.created_at.desc(), VaultCredential.id.desc()).limit(limit)
    return (await db.scalars(query)).all()


async def get_credential_by_id(
    db: AsyncSession, credential_id: str, *, lock: bool = False
) -> VaultCredential | None:
    query = select(VaultCredential).where(VaultCredential.id == credential_id)
    return await db.scalar(query.with_for_update() if lock else query)
