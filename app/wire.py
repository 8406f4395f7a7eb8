"""Wire formats shared by every resource. A leaf module."""

from __future__ import annotations

from datetime import UTC, datetime


def iso(value: datetime | None) -> str | None:
    """RFC 3339 in UTC with a `Z`, millisecond precision: `2026-05-01T12:00:00.123Z`."""
    if value is None:
        return None
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
