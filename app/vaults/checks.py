"""Checks of credential input shared by create and update (400s that never repeat a secret)."""

from __future__ import annotations

import ipaddress
import re
from datetime import UTC, datetime

from app.db.base import utcnow
from app.errors import InvalidRequest
from app.shared.environment_config import NetworkingConfig
from app.shared.hosts import host_problem
from app.shared.text import check_single_line
from app.vaults.schemas import LimitedNetworking, UnrestrictedNetworking
from app.vaults.urls import url_problem

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def url(value: str, field: str) -> str:
    problem = url_problem(value)
    if problem:
        raise InvalidRequest(f"{field}: {problem}")
    return value


def header_safe(value: str, field: str) -> str:
    """Tokens go into HTTP headers: no line breaks or other control characters (the message never
    repeats the value)."""
    return check_single_line(value, field)


def future(value: datetime | None, field: str) -> str | None:
    if value is None:
        return None
    value = value if value.tzinfo else value.replace(tzinfo=UTC)
    if value <= utcnow():
        raise InvalidRequest(f"{field}: must be in the future")
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def host(value: str, field: str) -> str:
    try:
        if isinstance(ipaddress.ip_address(value.strip("[]")), ipaddress.IPv6Address):
            raise InvalidRequest(f"{field}: IPv6 addresses are not accepted")
    except ValueError:
        pass
    problem = host_problem(value, wildcard=True)
    if problem:
        raise InvalidRequest(f"{field}: {problem}")
    return value


def networking(value: UnrestrictedNetworking | LimitedNetworking, field: str) -> NetworkingConfig:
    if isinstance(value, LimitedNetworking):
        for i, entry in enumerate(value.allowed_hosts):
            host(entry, f"{field}.allowed_hosts[{i}]")
        return {"type": "limited", "allowed_hosts": list(value.allowed_hosts)}
    return {"type": "unrestricted"}


def secret_name(value: str) -> str:
    if not _ENV_NAME.match(value):
        raise InvalidRequest(
            "auth.secret_name: must be an environment variable name (letters, digits and _, "
            "not starting with a digit)"
        )
    return value
