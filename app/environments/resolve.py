"""An environment's ``config``: defaults, the update merge, and the host and package rules.

The stored config is the response shape with every default filled in:
``{type:"cloud", networking:{...}, packages:{type:"packages", apt:[], ...}}`` or
``{type:"self_hosted"}``. Create merges into the default cloud config; update merges into the
stored one, where omitted (or null) cloud sub-fields keep their stored value.
"""

from __future__ import annotations

from app.environments.schemas import ConfigParams, NetworkingParams, PackagesParams
from app.errors import InvalidRequest
from app.shared.environment_config import (
    MANAGERS,
    CloudConfig,
    EnvironmentConfig,
    LimitedNetworkingConfig,
    NetworkingConfig,
    Packages,
    SelfHostedConfig,
    UnrestrictedNetworkingConfig,
)
from app.shared.hosts import allow_list_problem

UNRESTRICTED: UnrestrictedNetworkingConfig = {"type": "unrestricted"}
LIMITED_DEFAULTS: LimitedNetworkingConfig = {
    "type": "limited",
    "allowed_hosts": [],
    "allow_mcp_servers": False,
    "allow_package_managers": False,
}


def default_config() -> CloudConfig:
    """Cloud with unrestricted networking (as the docs' examples) and no packages."""
    packages: Packages = {
        "type": "packages",
        "apt": [],
        "cargo": [],
        "gem": [],
        "go": [],
        "npm": [],
        "pip": [],
    }
    return {"type": "cloud", "networking": UNRESTRICTED.copy(), "packages": packages}


def resolve_config(params: ConfigParams | None, stored: EnvironmentConfig | None = None) -> EnvironmentConfig:
    """``params`` merged into ``stored`` (an update) or into the default config (a create)."""
    if params is None:
        return stored if stored is not None else default_config()
    if stored is not None and params.type != stored["type"]:
        raise InvalidRequest(
            f"config.type: cannot change the config type from {stored['type']!r} to {params.type!r}",
            error_code="invalid_config_type_change",
        )
    if params.type == "self_hosted":
        return _self_hosted(params)
    base = stored if stored is not None and stored["type"] == "cloud" else default_config()
    config: CloudConfig = {
        "type": "cloud",
        "networking": _networking(params.networking, base["networking"]),
        "packages": _packages(params.packages, base["packages"]),
    }
    _check_packages_allowed(config)
    return config


def _self_hosted(params: ConfigParams) -> SelfHostedConfig:
    for field in ("networking", "packages"):
        if getattr(params, field) is not None:
            raise InvalidRequest(f"config.{field}: not supported for self_hosted environments")
    return {"type": "self_hosted"}


def _networking(params: NetworkingParams | None, stored: NetworkingConfig) -> NetworkingConfig:
    if params is None:
        return stored
    if params.type == "unrestricted":
        return UNRESTRICTED.copy()
    networking = stored.copy() if stored["type"] == "limited" else LIMITED_DEFAULTS.copy()
    if params.allowed_hosts is not None:
        networking["allowed_hosts"] = params.allowed_hosts
    if params.allow_mcp_servers is not None:
        networking["allow_mcp_servers"] = params.allow_mcp_servers
    if params.allow_package_managers is not None:
        networking["allow_package_managers"] = params.allow_package_managers
    _check_hosts(networking["allowed_hosts"])
    return networking


def _check_hosts(hosts: list[str]) -> None:
    """Bare hostnames or ``*.`` wildcards, kept verbatim (case too); no scheme, port or path, no
    public-suffix wildcard, no loopback, link-local or metadata address."""
    for i, host in enumerate(hosts):
        problem = allow_list_problem(host)
        if problem:
            raise InvalidRequest(f"config.networking.allowed_hosts[{i}]: {host!r} {problem}")


def _packages(params: PackagesParams | None, stored: Packages) -> Packages:
    """A list sent replaces that manager's list; an omitted or null one keeps the stored list."""
    if params is None:
        return stored
    packages = stored.copy()
    for manager in MANAGERS:
        value = getattr(params, manager)
        if value is not None:
            packages[manager] = list(value)
    return packages


def _check_packages_allowed(config: CloudConfig) -> None:
    networking = config["networking"]
    if networking["type"] != "limited" or networking["allow_package_managers"]:
        return
    if any(config["packages"].get(manager) for manager in MANAGERS):
        raise InvalidRequest(
            "config.packages: packages under limited networking require "
            "config.networking.allow_package_managers to be true"
        )
