"""Vault credentials: create, read, update, archive, delete. Services only flush.

The secret fields of a credential (bearer token, OAuth tokens and client secret, a variable's
value) are sealed with the ``SecretBox`` into one column and never leave this module except to
the code that uses them. Each active credential's key (its normalised MCP server URL, or its
variable name) is unique in its vault (409) and cannot change (400). Archiving is final and
destroys the sealed secret.
"""

from __future__ import annotations

import copy

from sqlalchemy.ext.asyncio import AsyncSession

from app.db import models
from app.db.base import utcnow
from app.errors import Conflict, InvalidRequest, NotFound
from app.ids import new_id
from app.shared.metadata import patch_metadata, validate_metadata
from app.shared.pagination import decode_cursor, decode_time_key, newest_first_page
from app.shared.text import check_single_line
from app.shared.vault_auth import EnvironmentVariablePublic, McpOAuthPublic, PublicAuth
from app.vaults import checks, repository, updates
from app.vaults import service as vaults
from app.vaults.schemas import (
    AuthCreate,
    Credential,
    CredentialCreate,
    CredentialDeleted,
    CredentialPage,
    CredentialUpdate,
    EnvironmentVariableCreate,
    McpOAuthCreate,
    StaticBearerCreate,
)
from app.vaults.secrets import SecretBox
from app.vaults.urls import normalise_url

MAX_ACTIVE_CREDENTIALS = 20


def view(row: models.VaultCredential) -> Credential:
    return Credential.model_validate(
        {
            "id": row.id,
            "vault_id": row.vault_id,
            "auth": row.auth,
            "display_name": row.display_name,
            "metadata": row.metadata_,
            "created_at": row.created_at,
            "updated_at": row.updated_at,
            "archived_at": row.archived_at,
        }
    )


# --- create -------------------------------------------------------------------------------------


Built = tuple[str, PublicAuth, dict[str, str]]  # match key, public auth, secret fields


def _build_bearer(auth: StaticBearerCreate) -> Built:
    url = checks.url(auth.mcp_server_url, "auth.mcp_server_url")
    secret = {"token": checks.header_safe(auth.token, "auth.token")}
    return "url:" + normalise_url(url), {"type": auth.type, "mcp_server_url": url}, secret


def _build_oauth(auth: McpOAuthCreate) -> Built:
    url = checks.url(auth.mcp_server_url, "auth.mcp_server_url")
    public: McpOAuthPublic = {"type": auth.type, "mcp_server_url": url}
    secret = {"access_token": checks.header_safe(auth.access_token, "auth.access_token")}
    expires_at = checks.future(auth.expires_at, "auth.expires_at")
    if expires_at:
        public["expires_at"] = expires_at
    if auth.refresh is not None:
        refresh = auth.refresh
        public["refresh"] = {
            "client_id": check_single_line(refresh.client_id, "auth.refresh.client_id"),
            "token_endpoint": checks.url(refresh.token_endpoint, "auth.refresh.token_endpoint"),
            "token_endpoint_auth": {"type": refresh.token_endpoint_auth.type},
            "resource": refresh.resource or None,
            "scope": refresh.scope or None,
        }
        secret["refresh_token"] = check_single_line(refresh.refresh_token, "auth.refresh.refresh_token")
        client_secret = getattr(refresh.token_endpoint_auth, "client_secret", None)
        if client_secret is not None:
            secret["client_secret"] = check_single_line(client_secret, "auth.refresh.client_secret")
    return "url:" + normalise_url(url), public, secret


def _build_env(auth: EnvironmentVariableCreate) -> Built:
    name = checks.secret_name(auth.secret_name)
    location = auth.injection_location
    # Default: headers only (a secret substituted into bodies may be echoed back by the host).
    header = True if location is None or location.header is None else location.header
    body = False if location is None or location.body is None else location.body
    if not (header or body):
        raise InvalidRequest("auth.injection_location: at least one of header and body must be enabled")
    public: EnvironmentVariablePublic = {
        "type": auth.type,
        "secret_name": name,
        "networking": checks.networking(auth.networking, "auth.networking"),
        "injection_location": {"header": header, "body": body},
    }
    return "env:" + name, public, {"secret_value": auth.secret_value}


def _build(auth: AuthCreate) -> Built:
    if isinstance(auth, StaticBearerCreate):
        return _build_bearer(auth)
    if isinstance(auth, McpOAuthCreate):
        return _build_oauth(auth)
    return _build_env(auth)


async def _check_free(db: AsyncSession, vault_id: str, match_key: str, keep: str | None = None) -> None:
    holder = await repository.active_with_key(db, vault_id, match_key)
    if holder is not None and holder.id != keep:
        kind, _, key = match_key.partition(":")
        what = "MCP server URL" if kind == "url" else "secret_name"
        raise Conflict(f"Vault {vault_id} already has an active credential ({holder.id}) for {what} {key}")


async def create(db: AsyncSession, box: SecretBox, vault_id: str, params: CredentialCreate) -> Credential:
    vault = await vaults.get_row(db, vault_id, lock=True)
    if vault.archived_at is not None:
        raise vaults.archived_error(vault.id)
    match_key, public, secret = _build(params.auth)
    await _check_free(db, vault.id, match_key)
    if await repository.count_active(db, vault.id) >= MAX_ACTIVE_CREDENTIALS:
        raise InvalidRequest(
            f"Vault {vault.id} already holds {MAX_ACTIVE_CREDENTIALS} active credentials, the most allowed"
        )
    now = utcnow()
    credential_id = new_id("vcrd")
    row = models.VaultCredential(
        id=credential_id,
        vault_id=vault.id,
        kind=params.auth.type,
        match_key=match_key,
        auth=public,
        secret=box.seal(credential_id, secret),
        display_name=_display_name(params.display_name),
        metadata_=validate_metadata(params.metadata or {}),
        created_at=now,
        updated_at=now,
        archived_at=None,
    )
    repository.add(db, row)
    await db.flush()
    return view(row)


def _display_name(value: str | None) -> str | None:
    return check_single_line(value, "display_name") if value else None


# --- read, archive, delete ------------------------------------------------------------------------


async def _row(
    db: AsyncSession, vault_id: str, credential_id: str, *, lock: bool = False
) -> models.VaultCredential:
    await vaults.get_row(db, vault_id)
    row = await repository.get_credential(db, vault_id, credential_id, lock=lock)
    if row is None:
        raise NotFound(f"Credential {credential_id} not found in vault {vault_id}.")
    return row


async def get(db: AsyncSession, vault_id: str, credential_id: str) -> Credential:
    return view(await _row(db, vault_id, credential_id))


async def archive(db: AsyncSession, vault_id: str, credential_id: str) -> Credential:
    """Archive for good (idempotent): sessions stop using it and its secret is destroyed."""
    row = await _row(db, vault_id, credential_id, lock=True)
    if row.archived_at is None:
        row.archived_at = row.updated_at = utcnow()
        row.secret = ""
        await db.flush()
    return view(row)


async def delete(db: AsyncSession, vault_id: str, credential_id: str) -> CredentialDeleted:
    row = await _row(db, vault_id, credential_id, lock=True)
    await repository.delete_credential(db, row.id)
    await db.flush()
    return CredentialDeleted(id=credential_id)


async def list_credentials(
    db: AsyncSession, vault_id: str, *, include_archived: bool, limit: int, page: str | None
) -> CredentialPage:
    await vaults.get_row(db, vault_id)
    rows = await repository.list_credentials(
        db,
        vault_id,
        include_archived=include_archived,
        after=decode_time_key(decode_cursor(page, "desc")),
        limit=limit + 1,
    )
    shown, next_page = newest_first_page(rows, limit)
    return CredentialPage(data=[view(r) for r in shown], next_page=next_page)


# --- update -------------------------------------------------------------------------------------


async def update(
    db: AsyncSession, box: SecretBox, vault_id: str, credential_id: str, patch: CredentialUpdate
) -> Credential:
    """Display name and metadata as for vaults; ``auth`` must name the stored type, its key fields
    cannot change, and each secret field sent replaces the stored one."""
    vault = await vaults.get_row(db, vault_id, lock=True)
    row = await _row(db, vault_id, credential_id, lock=True)
    if vault.archived_at is not None:
        raise vaults.archived_error(vault.id)
    if row.archived_at is not None:
        raise InvalidRequest(f"Credential {credential_id} is archived.")
    before = (copy.deepcopy(row.auth), row.display_name, dict(row.metadata_))
    if "display_name" in patch.model_fields_set:  # null or "" clears it
        row.display_name = _display_name(patch.display_name)
    if patch.metadata is not None:
        row.metadata_ = patch_metadata(row.metadata_, patch.metadata)
    if patch.auth is not None:
        if patch.auth.type != row.kind:
            raise InvalidRequest(
                f"auth.type: this credential is {row.kind}; the type of a credential cannot change"
            )
        secret = box.open(row.id, row.secret)
        row.auth = updates.apply_auth(copy.deepcopy(row.auth), secret, patch.auth)
        row.secret = box.seal(row.id, secret)
    if (dict(row.auth), row.display_name, dict(row.metadata_)) != before or updates.secret_sent(patch.auth):
        row.updated_at = utcnow()
    await db.flush()
    return view(row)
