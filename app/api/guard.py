"""The checks in front of every /v1 route, as one dependency (FastAPI resolves each dependency
on every request; three cost three times one)."""

from __future__ import annotations

from fastapi import Request

from app.api.auth import authenticate
from app.api.context import bind_log_context
from app.api.query import reject_nul
from app.api.ratelimit import enforce_rate_limit


async def v1_checks(request: Request) -> None:
    """Authentication and the route's scope (401/403), the rate limit (429), then a NUL in the
    URL (400): in that order, so an unauthenticated caller learns nothing else. Every line logged
    meanwhile (and after) names the route's session."""
    bind_log_context(request)
    await authenticate(request)
    enforce_rate_limit(request)
    reject_nul(request)
