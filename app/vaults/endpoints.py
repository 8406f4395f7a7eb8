"""/v1/vaults and /v1/vaults/{vault_id}/credentials."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from app.api.deps import DatabaseDep, ReadSession, SettingsDep, WriteSession
from app.mcp import validation
from app.vaults import credentials, service
from app.vaults.schemas import (
    Credential,
    CredentialCreate,
    CredentialDeleted,
    CredentialPage,
    CredentialUpdate,
    CredentialValidation,
    Vault,
    VaultCreate,
    VaultDeleted,
    VaultPage,
    VaultUpdate,
)
from app.vaults.secrets import SecretBox

router = APIRouter(prefix="/vaults", tags=["vaults"])

Limit = Annotated[int, Query(ge=1, le=100)]


async def _secret_box(request: Request) -> SecretBox:
    box: SecretBox = request.app.state.secret_box
    return box


Box = Annotated[SecretBox, Depends(_secret_box)]


# --- vaults -------------------------------------------------------------------------------------


@router.post("", response_model=Vault)
async def create_vault(body: VaultCreate, db: WriteSession) -> Vault:
    """Create a vault."""
    return await service.create(db, body)


@router.get("", response_model=VaultPage)
async def list_vaults(
    db: ReadSession, include_archived: bool = False, limit: Limit = 20, page: str | None = None
) -> VaultPage:
    """List vaults, newest first."""
    return await service.list_vaults(db, include_archived=include_archived, limit=limit, page=page)


@router.get("/{vault_id}", response_model=Vault)
async def retrieve_vault(vault_id: str, db: ReadSession) -> Vault:
    """Retrieve a vault."""
    return await service.get(db, vault_id)


@router.post("/{vault_id}", response_model=Vault)
async def update_vault(vault_id: str, body: VaultUpdate, db: WriteSession) -> Vault:
    """Update a vault's display name or metadata (a patch)."""
    return await service.update(db, vault_id, body)


@router.post("/{vault_id}/archive", response_model=Vault)
async def archive_vault(vault_id: str, db: WriteSession) -> Vault:
    """Archive a vault: no new credentials, and no new session can reference it."""
    return await service.archive(db, vault_id)


@router.delete("/{vault_id}", response_model=VaultDeleted)
async def delete_vault(vault_id: str, db: WriteSession) -> VaultDeleted:
    """Delete a vault and its credentials."""
    return await service.delete(db, vault_id)


# --- credentials --------------------------------------------------------------------------------


@router.post("/{vault_id}/credentials", response_model=Credential)
async def create_credential(vault_id: str, body: CredentialCreate, db: WriteSession, box: Box) -> Credential:
    """Add a credential; its secret fields are write-only."""
    return await credentials.create(db, box, vault_id, body)


@router.get("/{vault_id}/credentials", response_model=CredentialPage)
async def list_credentials(
    vault_id: str,
    db: ReadSession,
    include_archived: bool = False,
    limit: Limit = 20,
    page: str | None = None,
) -> CredentialPage:
    """List a vault's credentials, newest first."""
    return await credentials.list_credentials(
        db, vault_id, include_archived=include_archived, limit=limit, page=page
    )


@router.get("/{vault_id}/credentials/{credential_id}", response_model=Credential)
async def retrieve_credential(vault_id: str, credential_id: str, db: ReadSession) -> Credential:
    """Retrieve a credential (never its secrets)."""
    return await credentials.get(db, vault_id, credential_id)


@router.post("/{vault_id}/credentials/{credential_id}", response_model=Credential)
async def update_credential(
    vault_id: str, credential_id: str, body: CredentialUpdate, db: WriteSession, box: Box
) -> Credential:
    """Update a credential: rotate its secrets, display name or metadata."""
    return await credentials.update(db, box, vault_id, credential_id, body)


@router.post("/{vault_id}/credentials/{credential_id}/archive", response_model=Credential)
async def archive_credential(vault_id: str, credential_id: str, db: WriteSession) -> Credential:
    """Archive a credential: sessions stop using it and its secret is destroyed."""
    return await credentials.archive(db, vault_id, credential_id)


@router.post(
    "/{vault_id}/credentials/{credential_id}/mcp_oauth_validate", response_model=CredentialValidation
)
async def validate_credential(
    vault_id: str, credential_id: str, database: DatabaseDep, box: Box, settings: SettingsDep
) -> CredentialValidation:
    """Probe an mcp_oauth credential against its MCP server (refreshing it if refused)."""
    return await validation.validate(database, box, settings, vault_id, credential_id)


@router.delete("/{vault_id}/credentials/{credential_id}", response_model=CredentialDeleted)
async def delete_credential(vault_id: str, credential_id: str, db: WriteSession) -> CredentialDeleted:
    """Delete a credential."""
    return await credentials.delete(db, vault_id, credential_id)
