"""Unauthenticated liveness endpoint."""

from __future__ import annotations

from fastapi import APIRouter, Request

router = APIRouter()


@router.get("/health", include_in_schema=False)
async def health(request: Request) -> dict[str, str]:
    """Liveness: the process answers; `sandbox` says whether this process's sandboxes can start."""
    worker = getattr(request.app.state, "worker", None)
    if worker is None:  # no embedded worker: this process runs no sandboxes
        return {"status": "ok"}
    problem = worker.deps.sandbox.health()
    return {"status": "ok", "sandbox": f"unavailable: {problem}" if problem else "ok"}
