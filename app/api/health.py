"""Unauthenticated probes: liveness (`/health`) and readiness (`/ready`)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from app.observability.readiness import Readiness

router = APIRouter()


@router.get("/health", include_in_schema=False)
async def health(request: Request) -> dict[str, str]:
    """Liveness: the process answers; `sandbox` says whether this process's sandboxes can start."""
    worker = getattr(request.app.state, "worker", None)
    if worker is None:  # no embedded worker: this process runs no sandboxes
        return {"status": "ok"}
    problem = worker.deps.sandbox.health()
    return {"status": "ok", "sandbox": f"unavailable: {problem}" if problem else "ok"}


@router.get("/ready", include_in_schema=False)
async def ready(request: Request) -> JSONResponse:
    """Readiness: 200 when every check passes, else 503; each check is `ok` or names its problem."""
    readiness: Readiness = request.app.state.readiness
    report = await readiness.check()
    return JSONResponse(report.body(), status_code=200 if report.ready else 503)
