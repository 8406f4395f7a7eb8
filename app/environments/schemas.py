"""Request and response schemas of /v1/environments, after the SDK's ``BetaEnvironment`` types.

Unknown keys are ignored (the SDK's ``extra_body`` may add any). Host and package rules that need
the stored configuration (updates merge into it) are checked by ``app/environments/resolve.py``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from app.shared.environment_config import EnvironmentConfig

Name = Annotated[str, Field(min_length=1, max_length=256)]
# Not documented for environments: the agents' limit (behaviour §19), so 10 MB is a 400.
Description = Annotated[str, Field(max_length=2048)]
PackageList = list[Annotated[str, Field(min_length=1)]]
Scope = Literal["organization", "account"]


class Params(BaseModel):
    model_config = ConfigDict(extra="ignore")


class NetworkingParams(Params):
    """``{type:"unrestricted"}`` or ``{type:"limited", allowed_hosts?, allow_mcp_servers?,
    allow_package_managers?}``; omitted limited fields keep their stored value on update."""

    type: Literal["unrestricted", "limited"]
    allowed_hosts: list[str] | None = None
    allow_mcp_servers: bool | None = None
    allow_package_managers: bool | None = None


class PackagesParams(Params):
    type: Literal["packages"] | None = None
    apt: PackageList | None = None
    cargo: PackageList | None = None
    gem: PackageList | None = None
    go: PackageList | None = None
    npm: PackageList | None = None
    pip: PackageList | None = None


class ConfigParams(Params):
    """``{type:"cloud", networking?, packages?}`` or ``{type:"self_hosted"}``."""

    type: Literal["cloud", "self_hosted"]
    networking: NetworkingParams | None = None
    packages: PackagesParams | None = None


class EnvironmentCreate(Params):
    name: Name
    description: Description | None = None
    config: ConfigParams | None = None
    metadata: dict[str, str] | None = None
    scope: Scope | None = None


class EnvironmentUpdate(Params):
    """Every field optional; ``model_fields_set`` tells an omitted field from an explicit null."""

    name: Name | None = None
    description: Description | None = None
    config: ConfigParams | None = None
    metadata: dict[str, str | None] | None = None
    scope: Scope | None = None


class Environment(BaseModel):
    """``BetaEnvironment``, plus ``state`` as the hosted API sends it."""

    type: Literal["environment"] = "environment"
    id: str
    name: str
    # Emitted as "" when unset: SDK 0.121.0 types it as a required string.
    description: str
    config: EnvironmentConfig
    metadata: dict[str, str]
    scope: Scope | None
    state: Literal["active", "archived"]
    created_at: datetime
    updated_at: datetime
    archived_at: datetime | None


class EnvironmentPage(BaseModel):
    data: list[Environment]
    next_page: str | None


class EnvironmentDeleted(BaseModel):
    type: Literal["environment_deleted"] = "environment_deleted"
    id: str
