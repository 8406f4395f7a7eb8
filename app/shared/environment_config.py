"""An environment's ``config`` as stored (``Environment.config``) and read by the sandbox, typed.

TypedDicts, so at run time they stay the plain dicts the database and the API carry. A stored
config is the response shape with every default filled in (``app/environments/resolve.py``); a
leaf module so that the database model can annotate its JSON column with it.
"""

from __future__ import annotations

from typing import Literal, NotRequired

# pydantic (response models) accepts only typing_extensions' TypedDict before Python 3.12.
from typing_extensions import TypedDict

Manager = Literal["apt", "cargo", "gem", "go", "npm", "pip"]
MANAGERS: tuple[Manager, ...] = ("apt", "cargo", "gem", "go", "npm", "pip")


class UnrestrictedNetworkingConfig(TypedDict):
    type: Literal["unrestricted"]


class LimitedNetworkingConfig(TypedDict):
    """A stored config has every key; a dispatcher's policy (``mas dispatch``) leaves out
    ``allow_mcp_servers``, and the egress rules read an absent flag as false."""

    type: Literal["limited"]
    allowed_hosts: list[str]
    allow_mcp_servers: NotRequired[bool]
    allow_package_managers: NotRequired[bool]


NetworkingConfig = UnrestrictedNetworkingConfig | LimitedNetworkingConfig


def unrestricted() -> NetworkingConfig:
    return {"type": "unrestricted"}


class Packages(TypedDict):
    """Every manager's list on a stored config; the config a deleted environment leaves its
    sessions (``environments.service.sandbox_config``) has ``packages: {}``."""

    type: NotRequired[Literal["packages"]]
    apt: NotRequired[list[str]]
    cargo: NotRequired[list[str]]
    gem: NotRequired[list[str]]
    go: NotRequired[list[str]]
    npm: NotRequired[list[str]]
    pip: NotRequired[list[str]]


class CloudConfig(TypedDict):
    type: Literal["cloud"]
    networking: NetworkingConfig
    packages: Packages


class SelfHostedConfig(TypedDict):
    type: Literal["self_hosted"]


EnvironmentConfig = CloudConfig | SelfHostedConfig


def package_lists(packages: Packages) -> dict[str, list[str]]:
    """The managers' lists alone, as the sandbox's image builder takes them."""
    return {manager: packages[manager] for manager in MANAGERS if manager in packages}
