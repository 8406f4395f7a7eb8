"""Every dependency of every route is a coroutine: FastAPI runs a plain `def` dependency in its
thread pool, a thread round trip per dependency per request (it was 16 for GET an agent)."""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from app.main import build_v1_router
from app.offline.endpoints import router as offline_router


def _calls(dependant: Dependant) -> Iterator[Any]:
    for sub in dependant.dependencies:
        if sub.call is not None:
            yield sub.call
        yield from _calls(sub)


def _routes(router: APIRouter) -> Iterator[APIRoute]:
    for route in router.routes:
        if isinstance(route, APIRoute):
            yield route
        original = getattr(route, "original_router", None)
        if isinstance(original, APIRouter):
            yield from _routes(original)


def _is_async(call: Any) -> bool:
    return inspect.iscoroutinefunction(call) or inspect.isasyncgenfunction(call)


def test_no_route_dependency_runs_in_the_thread_pool() -> None:
    sync = set()
    routers = [build_v1_router(), offline_router]
    routes = [route for router in routers for route in _routes(router)]
    assert len(routes) > 50
    for router in routers:
        for depends in router.dependencies:
            if depends.dependency is not None and not _is_async(depends.dependency):
                sync.add(depends.dependency.__qualname__)
    for route in routes:
        for call in _calls(route.dependant):
            if not _is_async(call):
                sync.add(f"{route.path}: {getattr(call, '__qualname__', call)}")
        if not _is_async(route.endpoint):
            sync.add(f"{route.path}: endpoint {route.endpoint.__qualname__}")
    assert not sync, sorted(sync)
