"""Request rate limits per API key, as the hosted API documents them: creates and other requests
each have a per-minute budget; a request over it gets 429 ``rate_limit_error`` with ``retry-after``.

A token bucket per (key, kind) holds a minute's budget and refills continuously, so a burst of the
whole budget is allowed and then one request per ``60 / budget`` seconds. Buckets live in the API
process: with several API replicas each enforces its own budget.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Literal

from fastapi import Request

from app.config import Settings
from app.errors import RateLimited

Kind = Literal["create", "read"]

# POST to a route whose path ends in one of these collections creates a resource.
_COLLECTIONS = frozenset(
    {
        "agents",
        "environments",
        "sessions",
        "vaults",
        "credentials",
        "skills",
        "versions",
        "memory_stores",
        "memories",
        "files",
        "deployments",
        "dreams",
        "resources",
        "threads",
    }
)


def request_kind(method: str, route_path: str) -> Kind:
    """``create`` for a POST to a collection (``/v1/agents``, ``/v1/skills/{id}/versions``), else
    ``read``: the hosted API's "all other operations" budget."""
    last = route_path.rstrip("/").rsplit("/", 1)[-1]
    return "create" if method == "POST" and last in _COLLECTIONS else "read"


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """Token buckets keyed by (API key id, kind); ``per_minute`` of 0 means unlimited."""

    def __init__(self) -> None:
        self._buckets: dict[tuple[str, Kind], _Bucket] = {}

    def take(self, key_id: str, kind: Kind, per_minute: int) -> float | None:
        """Spend one request; None if allowed, else the seconds until one would be."""
        if per_minute <= 0:
            return None
        now = time.monotonic()
        bucket = self._buckets.get((key_id, kind))
        if bucket is None:
            if len(self._buckets) > 100_000:
                self._buckets.clear()
            bucket = self._buckets[(key_id, kind)] = _Bucket(float(per_minute), now)
        rate = per_minute / 60.0
        bucket.tokens = min(float(per_minute), bucket.tokens + (now - bucket.updated) * rate)
        bucket.updated = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return None
        return (1.0 - bucket.tokens) / rate


def enforce_rate_limit(request: Request) -> None:
    """Spend one request of the caller's budget (after ``authenticate``); a 429 when it is spent."""
    route = request.scope.get("route")
    spend(
        request.app.state.settings,
        request.app.state.rate_limiter,
        request.state.api_key_id,
        request.method,
        str(getattr(route, "path", request.url.path)),
    )


def spend(settings: Settings, limiter: RateLimiter, key_id: str, method: str, route_path: str) -> None:
    """Spend one request of ``key_id``'s budget for this route; a 429 when it is spent."""
    if not settings.rate_limits_enabled():
        return
    kind = request_kind(method, route_path)
    budget = (
        settings.rate_limit_creates_per_minute if kind == "create" else settings.rate_limit_reads_per_minute
    )
    wait = limiter.take(key_id, kind, budget)
    if wait is not None:
        what = "create requests" if kind == "create" else "requests"
        raise RateLimited(
            f"Rate limit exceeded: {budget} {what} per minute for this API key",
            retry_after=max(1, math.ceil(wait)),
        )
