"""Applying ``auth`` updates: the stored type and key fields stay, secret fields are replaced."""

from __future__ import annotations

from app.errors import InvalidRequest
from app.shared.text import check_single_line
from app.shared.vault_auth import EnvironmentVariablePublic, McpOAuthPublic, PublicAuth
from app.vaults import checks
from app.vaults.schemas import EnvironmentVariableUpdate, McpOAuthUpdate, StaticBearerUpdate
from app.vaults.urls import normalise_url, url_problem


def secret_sent(auth: StaticBearerUpdate | McpOAuthUpdate | EnvironmentVariableUpdate | None) -> bool:
    if auth is None:
        return False
    if isinstance(auth, StaticBearerUpdate):
        return auth.token is not None
    if isinstance(auth, EnvironmentVariableUpdate):
        return auth.secret_value is not None
    if auth.access_token is not None:
        return True
    refresh = auth.refresh
    if refresh is None:
        return False
    endpoint_auth = refresh.token_endpoint_auth
    new_client_secret = endpoint_auth is not None and endpoint_auth.client_secret is not None
    return refresh.refresh_token is not None or new_client_secret


def _immutable(sent: str | None, stored: str | None, field: str, *, url: bool = False) -> None:
    if sent is None:
        return
    same = (
        stored is not None and url_problem(sent) is None and normalise_url(sent) == normalise_url(stored)
        if url
        else sent == stored
    )
    if not same:
        raise InvalidRequest(f"{field}: cannot be changed after the credential is created")


def apply_auth(
    public: PublicAuth,
    secret: dict[str, str],
    auth: StaticBearerUpdate | McpOAuthUpdate | EnvironmentVariableUpdate,
) -> PublicAuth:
    """``auth`` applied to ``public`` (of the same kind: the caller checked) and ``secret``."""
    if isinstance(auth, StaticBearerUpdate) and public["type"] == "static_bearer":
        _immutable(auth.mcp_server_url, public["mcp_server_url"], "auth.mcp_server_url", url=True)
        if auth.token is not None:
            secret["token"] = checks.header_safe(auth.token, "auth.token")
        return public
    if isinstance(auth, McpOAuthUpdate) and public["type"] == "mcp_oauth":
        return _apply_oauth(public, secret, auth)
    if isinstance(auth, EnvironmentVariableUpdate) and public["type"] == "environment_variable":
        return _apply_env(public, secret, auth)
    raise InvalidRequest(
        f"auth.type: this credential is {public['type']}; the type of a credential cannot change"
    )


def _apply_oauth(public: McpOAuthPublic, secret: dict[str, str], auth: McpOAuthUpdate) -> McpOAuthPublic:
    _immutable(auth.mcp_server_url, public["mcp_server_url"], "auth.mcp_server_url", url=True)
    if auth.access_token is not None:
        secret["access_token"] = checks.header_safe(auth.access_token, "auth.access_token")
    if "expires_at" in auth.model_fields_set:
        expires_at = checks.future(auth.expires_at, "auth.expires_at")
        public.pop("expires_at", None)
        if expires_at:
            public["expires_at"] = expires_at
    if auth.refresh is None:
        return public
    stored = public.get("refresh")
    if stored is None:
        raise InvalidRequest("auth.refresh: this credential has no refresh configuration to update")
    refresh = auth.refresh
    _immutable(refresh.client_id, stored["client_id"], "auth.refresh.client_id")
    _immutable(refresh.token_endpoint, stored["token_endpoint"], "auth.refresh.token_endpoint")
    _immutable(refresh.resource, stored.get("resource"), "auth.refresh.resource")
    if refresh.refresh_token is not None:
        secret["refresh_token"] = check_single_line(refresh.refresh_token, "auth.refresh.refresh_token")
    if refresh.scope is not None:
        stored["scope"] = refresh.scope or None
    endpoint_auth = refresh.token_endpoint_auth
    if endpoint_auth is not None:
        if stored["token_endpoint_auth"]["type"] == "none":
            raise InvalidRequest(
                "auth.refresh.token_endpoint_auth: a client secret can only be replaced on a credential "
                "that already uses client_secret_basic or client_secret_post"
            )
        if endpoint_auth.client_secret is not None:
            secret["client_secret"] = check_single_line(
                endpoint_auth.client_secret, "auth.refresh.client_secret"
            )
    public["refresh"] = stored
    return public


def _apply_env(
    public: EnvironmentVariablePublic, secret: dict[str, str], auth: EnvironmentVariableUpdate
) -> EnvironmentVariablePublic:
    _immutable(auth.secret_name, public["secret_name"], "auth.secret_name")
    if auth.secret_value is not None:
        secret["secret_value"] = auth.secret_value
    if auth.networking is not None:
        public["networking"] = checks.networking(auth.networking, "auth.networking")
    if auth.injection_location is not None:
        location = public["injection_location"].copy()
        if auth.injection_location.header is not None:
            location["header"] = auth.injection_location.header
        if auth.injection_location.body is not None:
            location["body"] = auth.injection_location.body
        if not (location["header"] or location["body"]):
            raise InvalidRequest("auth.injection_location: at least one of header and body must stay enabled")
        public["injection_location"] = location
    return public
