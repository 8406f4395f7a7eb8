"""The public half of a vault credential as stored (``VaultCredential.auth``), typed.

TypedDicts, so at run time they stay the plain dicts the database and the API carry; the secret
fields are sealed apart (``VaultCredential.secret``). A leaf module so that the database model can
annotate its JSON column with it. One shape per ``kind``.
"""

from __future__ import annotations

from typing import Literal, NotRequired

from typing_extensions import TypedDict

from app.shared.environment_config import NetworkingConfig


class StaticBearerPublic(TypedDict):
    type: Literal["static_bearer"]
    mcp_server_url: str


class TokenEndpointAuth(TypedDict):
    type: Literal["none", "client_secret_basic", "client_secret_post"]


class OAuthRefreshPublic(TypedDict):
    client_id: str
    token_endpoint: str
    token_endpoint_auth: TokenEndpointAuth
    resource: str | None
    scope: str | None


class McpOAuthPublic(TypedDict):
    type: Literal["mcp_oauth"]
    mcp_server_url: str
    expires_at: NotRequired[str]  # RFC 3339, UTC
    refresh: NotRequired[OAuthRefreshPublic]


class InjectionLocation(TypedDict):
    header: bool
    body: bool


class EnvironmentVariablePublic(TypedDict):
    """``networking`` is ``{type:"unrestricted"}`` or ``{type:"limited", allowed_hosts}``."""

    type: Literal["environment_variable"]
    secret_name: str
    networking: NetworkingConfig
    injection_location: InjectionLocation


PublicAuth = StaticBearerPublic | McpOAuthPublic | EnvironmentVariablePublic
