"""API-key authentication: `x-api-key` or `Authorization: Bearer` (the 2.x SDK sends the latter).

Valid stored keys are remembered for a few seconds so that each request does not read the
database; a revoked key therefore stops working within `_CACHE_SECONDS`. The id of the key that
authenticated a request (`ApiKeyId`) is what audit records name as the API actor.
"""

from __future__ import annotations

import ipaddress
import time
from typing import Annotated

from fastapi import Depends, Request

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
        self._seen: dict[str, tuple[float, str]] = {}

    def fresh(self, key: str) -> str | None:
        """The id of ``key`` if it was validated less than ``_CACHE_SECONDS`` ago."""
        seen = self._seen.get(key)
        return seen[1] if seen is not None and time.monotonic() - seen[0] < _CACHE_SECONDS else None

    def remember(self, key: str, key_id: str) -> None:
        if len(self._seen) > 10_000:
            self._seen.clear()
        self._seen[key] = (time.monotonic(), key_id)


async def _key_id(request: Request, settings: SettingsDep, db: DatabaseDep, key: str) -> str | None:
    if apikeys.is_static_key(key, settings.api_keys):
        return apikeys.static_key_id(key)
    cache: KeyCache = request.app.state.key_cache
    cached = cache.fresh(key)
    if cached is not None:
        return cached
    async with db.read() as session:
        key_id = await apikeys.stored_key_id(session, key)
    if key_id is not None:
        cache.remember(key, key_id)
    return key_id


async def require_api_key(request: Request, settings: SettingsDep, db: DatabaseDep) -> None:
    key = _presented_key(request)
    key_id = await _key_id(request, settings, db, key) if key is not None else None
    if key_id is None:
        raise AuthenticationFailed("Authentication failed")
    request.state.api_key_id = key_id


def is_loopback(host: str) -> bool:
    """Whether binding ``host`` exposes the server to this machine only."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


async def require_api_key_off_loopback(request: Request, settings: SettingsDep, db: DatabaseDep) -> None:
    """The offline model's rule: any key (or none) while mas listens on loopback only, as a local
    stand-in for the Messages API; a mas API key, as for /v1, once it listens beyond loopback."""
    if not is_loopback(settings.host):
        await require_api_key(request, settings, db)


def current_api_key_id(request: Request) -> str:
    """The id of the API key this request was authenticated with (``require_api_key`` ran first)."""
    key_id: str = request.state.api_key_id
    return key_id


ApiKeyId = Annotated[str, Depends(current_api_key_id)]
