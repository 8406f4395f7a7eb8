"""Credentials as the code that uses them sees them: secrets opened, for one session's vaults.

Resolved afresh at every use, so a rotated secret or an archived credential reaches running
sessions. The first of the session's vaults (in ``vault_ids`` order) holding an active credential
for a server's normalised URL wins.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from app.db import models
from app.db.base import utcnow
from app.shared.environment_config import unrestricted
from app.vaults import repository
from app.vaults.secrets import SecretBox, SecretsUnreadable
from app.vaults.urls import normalise_url, url_problem

log = logging.getLogger("mas.vaults")


@dataclass(frozen=True)
class RefreshConfig:
    client_id: str
    token_endpoint: str
    auth_type: str
    client_secret: str | None
    refresh_token: str
    resource: str | None
    scope: str | None


@dataclass(frozen=True)
class McpCredential:
    credential_id: str
    vault_id: str
    kind: str  # static_bearer | mcp_oauth
    token: str
    expires_at: datetime | None
    refresh: RefreshConfig | None

    def expired(self, margin_s: float = 30.0) -> bool:
        return self.expires_at is not None and (self.expires_at - utcnow()).total_seconds() < margin_s


@dataclass(frozen=True)
class EnvCredential:
    """An ``environment_variable`` credential as the egress proxy uses it (the value opened)."""

    credential_id: str
    vault_id: str
    secret_name: str
    value: str = field(repr=False)
    hosts: tuple[str, ...] | None  # None: unrestricted (wherever the environment allows)
    header: bool
    body: bool


def _parse_time(value: object) -> datetime | None:
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")) if value else None


async def mcp_credential(
    db: AsyncSession, box: SecretBox, vault_ids: Sequence[str], server_url: str
) -> McpCredential | None:
    """The credential for an MCP server URL, or None (connect without one)."""
    if not vault_ids or url_problem(server_url):
        return None
    key = "url:" + normalise_url(server_url)
    rows = [r for r in await repository.active_in_vaults(db, vault_ids) if r.match_key == key]
    rows.sort(key=lambda r: list(vault_ids).index(r.vault_id))
    for row in rows:
        found = _open(box, row)
        if found is not None:
            return found
    return None


async def env_credentials(db: AsyncSession, box: SecretBox, vault_ids: Sequence[str]) -> list[EnvCredential]:
    """The session's active ``environment_variable`` credentials, one per ``secret_name``: the
    first of its vaults (in ``vault_ids`` order) holding one wins."""
    if not vault_ids:
        return []
    order = list(vault_ids)
    rows = [r for r in await repository.active_in_vaults(db, vault_ids) if r.kind == "environment_variable"]
    rows.sort(key=lambda r: order.index(r.vault_id))
    found: dict[str, EnvCredential] = {}
    for row in rows:
        auth = row.auth
        if auth["type"] != "environment_variable":
            continue
        name = str(auth["secret_name"])
        if name in found:
            continue
        try:
            secret = box.open(row.id, row.secret)
        except SecretsUnreadable as error:
            log.error("credential %s of vault %s cannot be used: %s", row.id, row.vault_id, error)
            continue
        networking = auth.get("networking") or unrestricted()
        location = auth.get("injection_location") or {"header": True, "body": False}
        hosts = (networking.get("allowed_hosts") or []) if networking["type"] == "limited" else None
        found[name] = EnvCredential(
            credential_id=row.id,
            vault_id=row.vault_id,
            secret_name=name,
            value=secret.get("secret_value", ""),
            hosts=tuple(str(h) for h in hosts) if hosts is not None else None,
            header=bool(location.get("header")),
            body=bool(location.get("body")),
        )
    return list(found.values())


async def credential_by_id(db: AsyncSession, box: SecretBox, credential_id: str) -> McpCredential | None:
    """The credential as stored now (None once archived or deleted)."""
    row = await repository.get_credential_by_id(db, credential_id)
    if row is None or row.archived_at is not None:
        return None
    return _open(box, row)


def _open(box: SecretBox, row: models.VaultCredential) -> McpCredential | None:
    try:
        secret = box.open(row.id, row.secret)
    except SecretsUnreadable as error:
        log.error("credential %s of vault %s cannot be used: %s", row.id, row.vault_id, error)
        return None
    auth = row.auth
    refresh = auth.get("refresh") if auth["type"] == "mcp_oauth" else None
    expires_at = auth.get("expires_at") if auth["type"] == "mcp_oauth" else None
    return McpCredential(
        credential_id=row.id,
        vault_id=row.vault_id,
        kind=row.kind,
        token=secret.get("token") or secret.get("access_token", ""),
        expires_at=_parse_time(expires_at),
        refresh=RefreshConfig(
            client_id=refresh["client_id"],
            token_endpoint=refresh["token_endpoint"],
            auth_type=refresh["token_endpoint_auth"]["type"],
            client_secret=secret.get("client_secret"),
            refresh_token=secret.get("refresh_token", ""),
            resource=refresh.get("resource"),
            scope=refresh.get("scope"),
        )
        if refresh and secret.get("refresh_token")
        else None,
    )


async def record_refresh(
    db: AsyncSession,
    box: SecretBox,
    credential_id: str,
    access_token: str,
    refresh_token: str | None,
    expires_at: datetime | None,
) -> None:
    """Store a refreshed access token (and a rotated refresh token) in the credential."""
    row = await repository.get_credential_by_id(db, credential_id, lock=True)
    if row is None or row.archived_at is not None:
        return
    secret = box.open(row.id, row.secret)
    secret["access_token"] = access_token
    if refresh_token:
        secret["refresh_token"] = refresh_token
    row.secret = box.seal(row.id, secret)
    if row.auth["type"] == "mcp_oauth":
        auth = row.auth.copy()
        auth.pop("expires_at", None)
        if expires_at is not None:
            auth["expires_at"] = expires_at.isoformat().replace("+00:00", "Z")
        row.auth = auth
    row.updated_at = utcnow()
    await db.flush()
