"""Authentication: `x-api-key` or `Authorization: Bearer` (the 2.x SDK sends the latter).

Three credentials are accepted. API keys (`MAS_API_KEYS`, or made with `mas keys create`) reach
everything. A self-hosted worker's **environment key** and the **sessions token** of a work item
reach only their environment's queue and sessions (`app.api.scopes` enforces that). API keys and
environment keys that validated are remembered for a few seconds so each request does not read
the database: a key revoked through this process's API (an environment key) is forgotten as the
revocation commits; one revoked elsewhere (another API process, `mas keys revoke`) stops working
within `_CACHE_SECONDS`. Keys from `MAS_API_KEYS` are compared without a database read at all.
Sessions tokens are checked every time, because a reclaimed work item must cut its old worker off
at once. The id of
the credential that authenticated a request (`ApiKeyId`) is what audit records name as the actor.
"""

from __future__ import annotations

import ipaddress
import time
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from app.api.scopes import Principal, check_api_key_route, check_scoped
from app.apikeys import service as apikeys
from app.config import Settings
from app.db.engine import Database
from app.envkeys import service as envkeys
from app.errors import AuthenticationFailed, PermissionDenied
from app.work import service as work

_CACHE_SECONDS = 5.0


def presented_key(x_api_key: str | None, authorization: str | None) -> str | None:
    """The credential of a request from its `x-api-key` or `Authorization: Bearer` header."""
    if x_api_key and x_api_key.strip():
        return x_api_key.strip()
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None


def _presented_key(request: Request) -> str | None:
    return presented_key(request.headers.get("x-api-key"), request.headers.get("authorization"))


class KeyCache:
    def __init__(self) -> None:
        self._seen: dict[str, tuple[float, Principal]] = {}

    def fresh(self, key: str) -> Principal | None:
        """The principal of ``key`` if it was validated less than ``_CACHE_SECONDS`` ago."""
        seen = self._seen.get(key)
        return seen[1] if seen is not None and time.monotonic() - seen[0] < _CACHE_SECONDS else None

    def remember(self, key: str, principal: Principal) -> None:
        if len(self._seen) > 10_000:
            self._seen.clear()
        self._seen[key] = (time.monotonic(), principal)

    def forget(self, principal_id: str) -> None:
        """Drop a revoked credential now (this process; others stop within ``_CACHE_SECONDS``)."""
        for key in [k for k, (_, principal) in self._seen.items() if principal.id == principal_id]:
            del self._seen[key]


async def get_key_cache(request: Request) -> KeyCache:
    cache: KeyCache = request.app.state.key_cache
    return cache


KeyCacheDep = Annotated[KeyCache, Depends(get_key_cache)]


async def _stored_principal(db: AsyncSession, key: str) -> Principal | None:
    holder = await work.token_holder(db, key)
    if holder is not None:
        return Principal(
            "work_token",
            holder.id,
            environment_id=holder.environment_id,
            session_id=holder.session_id,
            work_id=holder.id,
        )
    environment_key = await envkeys.environment_of(db, key)
    if environment_key is not None:
        return Principal("environment_key", environment_key[0], environment_id=environment_key[1])
    key_id = await apikeys.stored_key_id(db, key)
    return Principal("api_key", key_id) if key_id is not None else None


def known_principal(settings: Settings, cache: KeyCache, key: str) -> Principal | None:
    """The principal of ``key`` without reading the database: a key from ``MAS_API_KEYS``, or one
    validated less than ``_CACHE_SECONDS`` ago; None: look it up."""
    if apikeys.is_static_key(key, settings.api_keys):
        return Principal("api_key", apikeys.static_key_id(key))
    return cache.fresh(key)


async def _principal(request: Request, settings: Settings, db: Database, key: str) -> Principal | None:
    cache: KeyCache = request.app.state.key_cache
    known = known_principal(settings, cache, key)
    if known is not None:
        return known
    async with db.read() as session:
        principal = await _stored_principal(session, key)
    if principal is not None and principal.kind != "work_token":
        cache.remember(key, principal)
    return principal


async def authenticate(request: Request) -> None:
    """Who is calling (a 401 unless a valid credential is presented) and whether that credential
    may call this route. Reads the settings and database from the app (no sub-dependencies: each
    one FastAPI resolves costs a little on every request)."""
    settings: Settings = request.app.state.settings
    db: Database = request.app.state.db
    key = _presented_key(request)
    principal = await _principal(request, settings, db, key) if key is not None else None
    if principal is None:
        raise AuthenticationFailed("Authentication failed")
    request.state.api_key_id = principal.id
    request.state.principal = principal
    if principal.kind == "api_key":
        check_api_key_route(request)
        return
    async with db.read() as session:
        await check_scoped(request, principal, session)


async def require_metrics_access(request: Request) -> None:
    """`/metrics`: an API key (not a worker's scoped credential) unless `metrics_public` is set."""
    settings: Settings = request.app.state.settings
    db: Database = request.app.state.db
    if settings.metrics_public:
        return
    key = _presented_key(request)
    principal = await _principal(request, settings, db, key) if key is not None else None
    if principal is None:
        raise AuthenticationFailed("Authentication failed")
    if principal.kind != "api_key":
        raise PermissionDenied("/metrics takes an API key")


def is_loopback(host: str) -> bool:
    """Whether binding ``host`` exposes the server to this machine only."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


async def require_api_key_off_loopback(request: Request) -> None:
    """The offline model's rule: any key (or none) while mas listens on loopback only, as a local
    stand-in for the Messages API; a mas API key, as for /v1, once it listens beyond loopback."""
    settings: Settings = request.app.state.settings
    if not is_loopback(settings.host):
        await authenticate(request)


async def current_api_key_id(request: Request) -> str:
    """The id of the credential this request was authenticated with (``authenticate`` ran first)."""
    key_id: str = request.state.api_key_id
    return key_id


ApiKeyId = Annotated[str, Depends(current_api_key_id)]


async def current_principal(request: Request) -> Principal:
    """The credential this request was authenticated with (``authenticate`` ran first)."""
    principal: Principal = request.state.principal
    return principal


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]
