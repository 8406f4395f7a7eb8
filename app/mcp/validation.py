"""``mcp_oauth_validate``: probe an ``mcp_oauth`` credential against its MCP server.

The probe connects with the stored access token (the MCP handshake and a tools listing). If the
server refuses it and a refresh token is stored, the refresh-token grant is tried once and the new
tokens are kept; the new access token is not probed again, so the verdict is then ``unknown``,
as on the hosted API. Network work happens outside any transaction.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Literal

from app.config import Settings
from app.db.base import utcnow
from app.db.engine import Database
from app.errors import InvalidRequest
from app.mcp import oauth
from app.mcp.base import McpFailure
from app.vaults import credentials, resolve
from app.vaults.schemas import CredentialValidation, HttpResponse, McpProbe, RefreshOutcome
from app.vaults.secrets import SecretBox


async def validate(
    database: Database, box: SecretBox, settings: Settings, vault_id: str, credential_id: str
) -> CredentialValidation:
    async with database.read() as db:
        shown = await credentials.get(db, vault_id, credential_id)
        if shown.auth.type != "mcp_oauth":
            raise InvalidRequest(
                f"Credential {credential_id} is {shown.auth.type}: only mcp_oauth can be validated"
            )
        if shown.archived_at is not None:
            raise InvalidRequest(f"Credential {credential_id} is archived.")
        credential = await resolve.credential_by_id(db, box, credential_id)
    if credential is None:
        raise InvalidRequest(f"Credential {credential_id} cannot be read with this server's vault key.")
    now = utcnow()
    failure = await _probe(shown.auth.mcp_server_url, credential.token, settings)
    if failure is None:
        return _result(credential_id, vault_id, credential, now, "valid")
    probe = McpProbe(method="initialize", http_response=_status_only(failure))
    if not failure.auth:
        return _result(credential_id, vault_id, credential, now, "unknown", probe=probe)
    if credential.refresh is None:
        return _result(
            credential_id,
            vault_id,
            credential,
            now,
            "invalid",
            probe,
            RefreshOutcome(status="no_refresh_token"),
        )
    try:
        await oauth.refresh_stored(database, box, credential)
    except oauth.RefreshFailed as error:
        answer = HttpResponse(**asdict(error.answer)) if error.answer else None
        outcome = RefreshOutcome(status="connect_error" if error.connect else "failed", http_response=answer)
        return _result(credential_id, vault_id, credential, now, "invalid", probe, outcome)
    return _result(
        credential_id, vault_id, credential, now, "unknown", probe, RefreshOutcome(status="succeeded")
    )


async def _probe(url: str, token: str, settings: Settings) -> McpFailure | None:
    from app.mcp.connection import McpConnection  # the SDK loads only when it is needed

    connection = McpConnection(url, token, call_timeout_s=settings.mcp_call_timeout_seconds)
    try:
        await connection.open()
    except McpFailure as failure:
        return failure
    await connection.close()
    return None


def _status_only(failure: McpFailure) -> HttpResponse | None:
    if failure.status is None:
        return None
    return HttpResponse(status_code=failure.status, content_type="", body="", body_truncated=False)


def _result(
    credential_id: str,
    vault_id: str,
    credential: resolve.McpCredential,
    when: datetime,
    status: Literal["valid", "invalid", "unknown"],
    probe: McpProbe | None = None,
    refresh: RefreshOutcome | None = None,
) -> CredentialValidation:
    return CredentialValidation(
        credential_id=credential_id,
        vault_id=vault_id,
        status=status,
        has_refresh_token=credential.refresh is not None,
        validated_at=when,
        mcp_probe=probe,
        refresh=refresh,
    )
