"""Query-string conventions of the API: bracket arrays (`statuses[]=a&statuses[]=b`, or repeated
`statuses=a`), literal range keys (`created_at[gte]`), and RFC 3339 datetimes in either the SDK's
`+00:00` form or the `Z` form."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from fastapi import Request

from app.errors import InvalidRequest


def array_param(name: str) -> Callable[[Request], Awaitable[list[str] | None]]:
    """A dependency reading ``name[]`` and ``name`` as one list; None when neither was sent."""

    async def read(request: Request) -> list[str] | None:
        values = request.query_params.getlist(f"{name}[]") + request.query_params.getlist(name)
        return values or None

    return read


def parse_datetime(value: str, field: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value.strip().replace(" ", "+").replace("Z", "+00:00"))
    except ValueError:
        raise InvalidRequest(f"{field}: invalid datetime {value!r}") from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed


def range_param(
    field: str, ops: tuple[str, ...] = ("gt", "gte", "lt", "lte")
) -> Callable[[Request], Awaitable[dict[str, datetime]]]:
    """A dependency reading ``field[op]`` keys into ``{op: datetime}``."""

    async def read(request: Request) -> dict[str, datetime]:
        found = {}
        for op in ops:
            raw = request.query_params.get(f"{field}[{op}]")
            if raw is not None:
                found[op] = parse_datetime(raw, f"{field}[{op}]")
        return found

    return read


def reject_nul(request: Request) -> None:
    """400 for a NUL character in the path or the query: PostgreSQL cannot compare text holding one."""
    if "\x00" in request.scope.get("path", "") or any(
        "\x00" in k or "\x00" in v for k, v in request.query_params.multi_items()
    ):
        raise InvalidRequest("the URL holds a NUL character (%00), which no id or parameter may contain")


def bool_param(request: Request, name: str, default: bool = False) -> bool:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    lowered = raw.strip().lower()
    if lowered in ("true", "1"):
        return True
    if lowered in ("false", "0"):
        return False
    raise InvalidRequest(f"{name}: expected true or false, got {raw!r}")
