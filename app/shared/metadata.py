"""Metadata bags shared by agents, environments and sessions: limits and the patch rule.

Pure functions, so every resource applies the same limits and reports them the same way
(400 ``invalid_request_error`` with ``details.error_code = "invalid_metadata"``).
"""

from __future__ import annotations

from collections.abc import Mapping

from app.errors import InvalidRequest

MAX_PAIRS = 16
MAX_KEY_CHARS = 64
MAX_VALUE_CHARS = 512


def _invalid(message: str) -> InvalidRequest:
    return InvalidRequest(message, error_code="invalid_metadata")


def validate_metadata(metadata: Mapping[str, str], field: str = "metadata") -> dict[str, str]:
    """Return a copy of ``metadata`` or raise if it breaks a limit."""
    if len(metadata) > MAX_PAIRS:
        raise _invalid(f"{field}: at most {MAX_PAIRS} key-value pairs are allowed (got {len(metadata)})")
    for key, value in metadata.items():
        if not 1 <= len(key) <= MAX_KEY_CHARS:
            raise _invalid(f"{field}: keys must be 1-{MAX_KEY_CHARS} characters (got {len(key)} for {key!r})")
        if len(value) > MAX_VALUE_CHARS:
            raise _invalid(f"{field}.{key}: values must be at most {MAX_VALUE_CHARS} characters")
        if "\x00" in key or "\x00" in value:  # PostgreSQL's JSON cannot hold one
            raise _invalid(f"{field}: NUL characters are not allowed in keys or values")
    return dict(metadata)


def patch_metadata(
    stored: Mapping[str, str],
    patch: Mapping[str, str | None],
    *,
    delete_empty: bool = False,
    field: str = "metadata",
) -> dict[str, str]:
    """Apply a metadata patch: a string upserts its key, null deletes it.

    Environments also delete on ``""`` (``delete_empty=True``); agents and sessions keep an
    empty string as a value. The limits apply to the resulting bag, not to the patch.
    """
    merged = dict(stored)
    for key, value in patch.items():
        if value is None or (delete_empty and value == ""):
            merged.pop(key, None)
        else:
            merged[key] = value
    return validate_metadata(merged, field)
