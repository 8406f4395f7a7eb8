"""The OAuth refresh-token grant (RFC 6749 §6) for ``mcp_oauth`` credentials."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx2

from app.db.base import utcnow
from app.db.engine import Database
from app.vaults import resolve
from app.vaults.resolve import McpCredential
from app.vaults.secrets import SecretBox

TIMEOUT_S = 20.0


@dataclass(frozen=True)
class HttpAnswer:
    """What an endpoint answered, for diagnostics: the body cut short, with secrets scrubbed."""

    status_code: int
    content_type: str
    body: str
    body_truncated: bool


class RefreshFailed(Exception):
    def __init__(self, message: str, *, answer: HttpAnswer | None = None, connect: bool = False) -> None:
        super().__init__(message)
        self.answer = answer
        self.connect = connect


def _answer(response: httpx2.Response, secrets: list[str]) -> HttpAnswer:
    body = response.text
    for secret in secrets:
        if secret:
            body = body.replace(secret, "[redacted]")
    return HttpAnswer(
        response.status_code, response.headers.get("content-type", ""), body[:2000], len(body) > 2000
    )


@dataclass(frozen=True)
class Refreshed:
    access_token: str
    refresh_token: str | None
    expires_at: datetime | None


def _form(credential: McpCredential) -> tuple[dict[str, str], httpx2.BasicAuth | None]:
    refresh = credential.refresh
    assert refresh is not None
    form = {"grant_type": "refresh_token", "refresh_token": refresh.refresh_token}
    if refresh.scope:
        form["scope"] = refresh.scope
    if refresh.resource:
        form["resource"] = refresh.resource
    auth = None
    if refresh.auth_type == "client_secret_basic":
        auth = httpx2.BasicAuth(refresh.client_id, refresh.client_secret or "")
    else:
        form["client_id"] = refresh.client_id
        if refresh.auth_type == "client_secret_post":
            form["client_secret"] = refresh.client_secret or ""
    return form, auth


async def refresh_token(credential: McpCredential) -> Refreshed:
    """A new access token from the token endpoint; RefreshFailed names why not (never a secret)."""
    if credential.refresh is None:
        raise RefreshFailed("the access token expired and the credential has no refresh configuration")
    form, auth = _form(credential)
    try:
        async with httpx2.AsyncClient(timeout=TIMEOUT_S, auth=auth) as http:
            response = await http.post(
                credential.refresh.token_endpoint, data=form, headers={"Accept": "application/json"}
            )
    except httpx2.HTTPError as error:
        raise RefreshFailed(
            f"the token endpoint could not be reached ({type(error).__name__})", connect=True
        ) from None
    secrets = [credential.refresh.refresh_token, credential.refresh.client_secret or "", credential.token]
    if response.status_code != 200:
        raise RefreshFailed(
            f"the token endpoint answered HTTP {response.status_code}", answer=_answer(response, secrets)
        )
    try:
        body = response.json()
        access_token = str(body["access_token"])
    except (ValueError, KeyError, TypeError):
        raise RefreshFailed(
            "the token endpoint's answer holds no access_token", answer=_answer(response, secrets)
        ) from None
    expires_in = body.get("expires_in")
    expires_at = (
        utcnow() + timedelta(seconds=float(expires_in)) if isinstance(expires_in, int | float) else None
    )
    new_refresh = body.get("refresh_token")
    return Refreshed(access_token, str(new_refresh) if new_refresh else None, expires_at)


async def refresh_stored(database: Database, box: SecretBox, credential: McpCredential) -> McpCredential:
    """Refresh a stored credential's access token and seal the new tokens back into it."""
    refreshed = await refresh_token(credential)
    async with database.unit_of_work() as db:
        await resolve.record_refresh(
            db,
            box,
            credential.credential_id,
            refreshed.access_token,
            refreshed.refresh_token,
            refreshed.expires_at,
        )
    async with database.read() as db:
        stored = await resolve.credential_by_id(db, box, credential.credential_id)
    if stored is None:
        raise RefreshFailed("the credential was archived or deleted meanwhile")
    return stored
