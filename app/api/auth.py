"""API-key authentication: `x-api-key` or `Authorization: Bearer` (the 2.x SDK sends the latter).

Valid stored keys are remembered for a few seconds so that each request does not read the
database; a revoked key therefore stops working within `_CACHE_SECONDS`.
"""

from __future__ import annotations

import time

from fastapi import Request

from app.api.deps import DatabaseDep, SettingsDep
from app.apikeys import service as apikeys
from app.errors import AuthenticationFailed

_CACHE_SECONDS = 5.0


def _presented_key(request: Request) -> str | None:
    key = request.headers.get("x-api-key")
    if key and key.strip():
        return key.strip()
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None


class KeyCache:
    def __init__(self) -> None:
        self._seen: dict[str, float] = {}

    def fresh(self, key: str) -> bool:
        seen = self._seen.get(key)
        return seen is not None and time.monotonic() - seen < _CACHE_SECONDS

    def remember(self, key: str) -> None:
        if len(self._seen) > 10_000:
            self._seen.clear()
        self._seen[key] = time.monotonic()


async def require_api_key(request: Request, settings: SettingsDep, db: DatabaseDep) -> None:
    key = _presented_key(request)
    if key is None:
        raise AuthenticationFailed("Authentication failed")
    if apikeys.is_static_key(key, settings.api_keys):
        return
    cache: KeyCache = request.app.state.key_cache
    if cache.fresh(key):
        return
    async with db.read() as session:
        valid = await apikeys.is_stored_key(session, key)
    if not valid:
        raise AuthenticationFailed("Authentication failed")
    cache.remember(key)
