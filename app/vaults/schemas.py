"""Request and response schemas of /v1/vaults and their credentials, after the SDK's
``BetaManagedAgentsVault`` and ``vaults.BetaManagedAgentsCredential`` (with its auth variants).

Secret fields exist only on the params: no response model has a field that could hold one.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

Secret = Annotated[str, Field(min_length=1, max_length=16384)]
Url = Annotated[str, Field(min_length=1)]
DisplayName = Annotated[str, Field(min_length=1, max_length=255)]


class Params(BaseModel):
    model_config = ConfigDict(extra="ignore")


class Strict(BaseModel):
    """Auth objects: an unknown (misspelt) key is a 400 rather than a secret silently dropped."""

    model_config = ConfigDict(extra="forbid")


# --- vaults -------------------------------------------------------------------------------------


class VaultCreate(Params):
    display_name: DisplayName
    metadata: dict[str, str] | None = None


class VaultUpdate(Params):
    display_name: DisplayName | None = None
    metadata: dict[str, str | None] | None = None


class Vault(BaseModel):
    type: Literal["vault"] = "vault"
    id: str
    display_name: str
    metadata: dict[str, str]
    created_at: datetime
    updated_at: datetime
    archived_at: datetime | None


class VaultPage(BaseModel):
    data: list[Vault]
    next_page: str | None


class VaultDeleted(BaseModel):
    type: Literal["vault_deleted"] = "vault_deleted"
    id: str


# --- auth params ----------------------------------------------------------------------------------


class TokenAuthNone(Strict):
    type: Literal["none"]


class TokenAuthBasic(Strict):
    type: Literal["client_secret_basic"]
    client_secret: Secret


class TokenAuthPost(Strict):
    type: Literal["client_secret_post"]
    client_secret: Secret


TokenEndpointAuth = Annotated[TokenAuthNone | TokenAuthBasic | TokenAuthPost, Field(discriminator="type")]


class OAuthRefreshCreate(Strict):
    client_id: Annotated[str, Field(min_length=1, max_length=1024)]
    refresh_token: Secret
    token_endpoint: Url
    token_endpoint_auth: TokenEndpointAuth
    resource: str | None = None
    scope: str | None = None


class StaticBearerCreate(Strict):
    type: Literal["static_bearer"]
    token: Secret
    mcp_server_url: Url


class McpOAuthCreate(Strict):
    type: Literal["mcp_oauth"]
    access_token: Secret
    mcp_server_url: Url
    expires_at: datetime | None = None
    refresh: OAuthRefreshCreate | None = None


class UnrestrictedNetworking(Strict):
    type: Literal["unrestricted"]


class LimitedNetworking(Strict):
    type: Literal["limited"]
    allowed_hosts: list[str] = Field(min_length=1, max_length=16)


CredentialNetworking = Annotated[UnrestrictedNetworking | LimitedNetworking, Field(discriminator="type")]


class InjectionLocationParams(Strict):
    header: bool | None = None
    body: bool | None = None


class EnvironmentVariableCreate(Strict):
    type: Literal["environment_variable"]
    secret_name: Annotated[str, Field(min_length=1, max_length=255)]
    secret_value: Secret
    networking: CredentialNetworking
    injection_location: InjectionLocationParams | None = None


AuthCreate = Annotated[
    StaticBearerCreate | McpOAuthCreate | EnvironmentVariableCreate, Field(discriminator="type")
]


class TokenAuthSecretUpdate(Strict):
    type: Literal["client_secret_basic", "client_secret_post"]
    client_secret: Secret | None = None


class OAuthRefreshUpdate(Strict):
    refresh_token: Secret | None = None
    scope: str | None = None
    token_endpoint_auth: TokenAuthSecretUpdate | None = None
    # Immutable: accepted only unchanged, so a client that echoes them back is not refused.
    client_id: str | None = None
    token_endpoint: str | None = None
    resource: str | None = None


class StaticBearerUpdate(Strict):
    type: Literal["static_bearer"]
    token: Secret | None = None
    mcp_server_url: str | None = None


class McpOAuthUpdate(Strict):
    type: Literal["mcp_oauth"]
    access_token: Secret | None = None
    expires_at: datetime | None = None
    refresh: OAuthRefreshUpdate | None = None
    mcp_server_url: str | None = None


class EnvironmentVariableUpdate(Strict):
    type: Literal["environment_variable"]
    secret_value: Secret | None = None
    networking: CredentialNetworking | None = None
    injection_location: InjectionLocationParams | None = None
    secret_name: str | None = None


AuthUpdate = Annotated[
    StaticBearerUpdate | McpOAuthUpdate | EnvironmentVariableUpdate, Field(discriminator="type")
]


class CredentialCreate(Params):
    auth: AuthCreate
    display_name: Annotated[str, Field(max_length=255)] | None = None
    metadata: dict[str, str] | None = None


class CredentialUpdate(Params):
    auth: AuthUpdate | None = None
    display_name: Annotated[str, Field(max_length=255)] | None = None
    metadata: dict[str, str | None] | None = None


# --- auth responses (no secrets) ------------------------------------------------------------------


class TokenAuthOut(BaseModel):
    type: Literal["none", "client_secret_basic", "client_secret_post"]


class OAuthRefreshOut(BaseModel):
    client_id: str
    token_endpoint: str
    token_endpoint_auth: TokenAuthOut
    resource: str | None = None
    scope: str | None = None


class StaticBearerAuth(BaseModel):
    type: Literal["static_bearer"] = "static_bearer"
    mcp_server_url: str


class McpOAuthAuth(BaseModel):
    type: Literal["mcp_oauth"] = "mcp_oauth"
    mcp_server_url: str
    expires_at: datetime | None = None
    refresh: OAuthRefreshOut | None = None


class InjectionLocation(BaseModel):
    header: bool
    body: bool


class EnvironmentVariableAuth(BaseModel):
    type: Literal["environment_variable"] = "environment_variable"
    secret_name: str
    networking: UnrestrictedNetworking | LimitedNetworking = Field(discriminator="type")
    injection_location: InjectionLocation


AuthOut = Annotated[StaticBearerAuth | McpOAuthAuth | EnvironmentVariableAuth, Field(discriminator="type")]


class Credential(BaseModel):
    type: Literal["vault_credential"] = "vault_credential"
    id: str
    vault_id: str
    auth: AuthOut
    display_name: str | None
    metadata: dict[str, str]
    created_at: datetime
    updated_at: datetime
    archived_at: datetime | None


class CredentialPage(BaseModel):
    data: list[Credential]
    next_page: str | None


class CredentialDeleted(BaseModel):
    type: Literal["vault_credential_deleted"] = "vault_credential_deleted"
    id: str


# --- validation -----------------------------------------------------------------------------------


class HttpResponse(BaseModel):
    status_code: int
    content_type: str
    body: str
    body_truncated: bool


class McpProbe(BaseModel):
    method: str
    http_response: HttpResponse | None = None


class RefreshOutcome(BaseModel):
    status: Literal["succeeded", "failed", "connect_error", "no_refresh_token"]
    http_response: HttpResponse | None = None


class CredentialValidation(BaseModel):
    type: Literal["vault_credential_validation"] = "vault_credential_validation"
    credential_id: str
    vault_id: str
    status: Literal["valid", "invalid", "unknown"]
    has_refresh_token: bool
    validated_at: datetime
    mcp_probe: McpProbe | None = None
    refresh: RefreshOutcome | None = None
