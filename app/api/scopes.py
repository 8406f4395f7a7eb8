"""What a scoped credential may call. API keys reach everything; the two worker credentials reach
only what a self-hosted worker needs, and only for their own environment:

* an **environment key**: its environment's work queue, and the sessions of that environment
  (retrieve, events list/stream/send);
* a **sessions token** (from a work item's `secret`): its own work item (retrieve, heartbeat,
  stop), its session, the skills that session's agent uses, and the memories of the memory stores
  attached to that session (the SDK worker's memory sync: list, retrieve, create, update, delete;
  a store attached `read_only` only reads, a write is 403).

Anything else is 403; another environment's or session's resources are 404, as if they did not
exist. Default deny: a route not listed here is refused to scoped credentials.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import Session
from app.errors import NotFound, PermissionDenied

# How a scope check finds a session's row (404 when it is not a session): the sessions package's
# `load`, handed in where the app is built (`app.state.session_loader`), so this toolkit imports
# no resource package.
SessionLoader = Callable[[AsyncSession, str], Awaitable[Session]]

PrincipalKind = Literal["api_key", "environment_key", "work_token"]


@dataclass(frozen=True)
class Principal:
    kind: PrincipalKind
    id: str
    environment_id: str | None = None
    session_id: str | None = None
    work_id: str | None = None


WORK = "/environments/{environment_id}/work"
SESSION_ROUTES = {
    ("GET", "/sessions/{session_id}"),
    ("GET", "/sessions/{session_id}/events"),
    ("POST", "/sessions/{session_id}/events"),
    ("GET", "/sessions/{session_id}/events/stream"),
}
ENVIRONMENT_KEY_ROUTES = SESSION_ROUTES | {
    ("GET", "/environments/{environment_id}"),
    ("GET", WORK),
    ("GET", WORK + "/poll"),
    ("GET", WORK + "/stats"),
    ("GET", WORK + "/{work_id}"),
    ("POST", WORK + "/{work_id}"),
    ("POST", WORK + "/{work_id}/ack"),
    ("POST", WORK + "/{work_id}/heartbeat"),
    ("POST", WORK + "/{work_id}/stop"),
}
MEMORIES = "/memory_stores/{memory_store_id}/memories"
MEMORY_READS = {("GET", MEMORIES), ("GET", MEMORIES + "/{memory_id}")}
MEMORY_WRITES = {
    ("POST", MEMORIES),
    ("POST", MEMORIES + "/{memory_id}"),
    ("DELETE", MEMORIES + "/{memory_id}"),
}
WORK_TOKEN_ROUTES = (
    SESSION_ROUTES
    | MEMORY_READS
    | MEMORY_WRITES
    | {
        ("GET", WORK + "/{work_id}"),
        ("POST", WORK + "/{work_id}/heartbeat"),
        ("POST", WORK + "/{work_id}/stop"),
        ("GET", "/skills/{skill_id}/versions/{version}"),
        ("GET", "/skills/{skill_id}/versions/{version}/content"),
    }
)
# Routes only a worker credential may call: the queue is not an API-key client's to drain.
WORKER_ONLY = {("GET", WORK + "/poll"), ("POST", WORK + "/{work_id}/ack")}


def _route(request: Request) -> tuple[str, str]:
    """(method, path template without the `/v1` prefix) of the matched route."""
    route = request.scope.get("route")
    return request.method, str(getattr(route, "path", "")).removeprefix("/v1")


def check_api_key_route(request: Request) -> None:
    if _route(request) in WORKER_ONLY:
        raise PermissionDenied("This route takes an environment key (Authorization: Bearer), not an API key")


async def check_scoped(request: Request, principal: Principal, db: AsyncSession) -> None:
    route = _route(request)
    allowed = ENVIRONMENT_KEY_ROUTES if principal.kind == "environment_key" else WORK_TOKEN_ROUTES
    if route not in allowed:
        raise PermissionDenied(f"A {principal.kind.replace('_', ' ')} cannot call {route[0]} {route[1]}")
    load: SessionLoader = request.app.state.session_loader
    await _check_ids(request.path_params, principal, db, load)
    if "memory_store_id" in request.path_params:
        await _check_memory_store(db, load, request.path_params["memory_store_id"], principal, route)


async def _check_ids(
    params: dict[str, str], principal: Principal, db: AsyncSession, load: SessionLoader
) -> None:
    environment_id = params.get("environment_id")
    if environment_id is not None and environment_id != principal.environment_id:
        raise NotFound(f"Environment {environment_id} not found")
    work_id = params.get("work_id")
    if work_id is not None and principal.work_id is not None and work_id != principal.work_id:
        raise NotFound(f"Work {work_id} not found")
    session_id = params.get("session_id")
    if session_id is not None:
        await _check_session(db, load, session_id, principal)
    skill_id = params.get("skill_id")
    if skill_id is not None:
        await _check_skill(db, load, skill_id, principal)


async def _check_session(
    db: AsyncSession, load: SessionLoader, session_id: str, principal: Principal
) -> None:
    if principal.session_id is not None and session_id != principal.session_id:
        raise NotFound(f"Session {session_id} not found")
    row = await load(db, session_id)
    if row.environment_id != principal.environment_id:
        raise NotFound(f"Session {session_id} not found")


async def _check_skill(db: AsyncSession, load: SessionLoader, skill_id: str, principal: Principal) -> None:
    """A sessions token reads the skills its session's agent uses, nothing else."""
    row = await load(db, principal.session_id or "")
    used = {str(s.get("skill_id")) for s in row.agent.get("skills") or []}
    if skill_id not in used:
        raise NotFound(f"Skill {skill_id} not found")


async def _check_memory_store(
    db: AsyncSession, load: SessionLoader, store_id: str, principal: Principal, route: tuple[str, str]
) -> None:
    """A sessions token reaches the memory stores attached to its session (writes only those
    attached `read_write`), nothing else."""
    row = await load(db, principal.session_id or "")
    access = {
        str(r.get("memory_store_id")): str(r.get("access") or "read_write")
        for r in row.resources
        if r.get("type") == "memory_store"
    }
    if store_id not in access:
        raise NotFound(f"Memory store {store_id} not found")
    if route in MEMORY_WRITES and access[store_id] == "read_only":
        raise PermissionDenied(f"Memory store {store_id} is attached to this session read_only")
