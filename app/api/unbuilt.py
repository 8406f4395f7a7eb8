"""Endpoints of the API that this build does not serve yet: their 404 says so.

A request whose path matches no route gets a 404 either way; for a path the SDK knows, the
message names the part of the API that is missing instead of a bare "Not found", so a user can tell
"not built here" from a typo. Once a router for a path exists, it is matched first and this table
no longer applies to it.
"""

from __future__ import annotations

import re

_PARTS: tuple[tuple[str, str], ...] = (
    (r"/v1/user_profiles(/.*)?", "user profiles"),
    (r"/v1/tunnels(/.*)?", "tunnels"),
    (r"/v1/messages/batches(/.*)?", "message batches"),
    (r"/v1/organizations(/.*)?", "the Admin API"),
    (r"/v1/compliance(/.*)?", "the compliance API"),
)
_COMPILED = tuple((re.compile(pattern), name) for pattern, name in _PARTS)


def not_built_message(method: str, path: str) -> str | None:
    """The 404 message for an API path this build does not serve, or None for an unknown path."""
    path = path.rstrip("/") or "/"
    for pattern, name in _COMPILED:
        if pattern.fullmatch(path):
            return f"{method} {path}: {name} is part of the API but not supported by this server yet"
    return None
