"""/v1/deployments and /v1/deployment_runs."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from app.api.deps import NotifierDep, ReadSession, SettingsDep, WriteSession
from app.deployments import service
from app.deployments.scheduler import timing
from app.deployments.schemas import (
    Deployment,
    DeploymentCreate,
    DeploymentPage,
    DeploymentRun,
    DeploymentRunPage,
    DeploymentUpdate,
)

router = APIRouter(prefix="/deployments", tags=["deployments"])
runs_router = APIRouter(prefix="/deployment_runs", tags=["deployments"])

Limit = Annotated[int, Query(ge=1, le=100)]


@router.post("", response_model=Deployment)
async def create_deployment(body: DeploymentCreate, db: WriteSession, settings: SettingsDep) -> Deployment:
    """Create a deployment (the agent is pinned to a version; a `schedule` makes it fire on cron)."""
    return await service.create(db, body, timing(settings))


@router.get("", response_model=DeploymentPage)
async def list_deployments(
    db: ReadSession,
    limit: Limit = 20,
    page: str | None = None,
    include_archived: bool = False,
    status: Literal["active", "paused"] | None = None,
    agent_id: str | None = None,
) -> DeploymentPage:
    """List deployments, newest first."""
    return await service.list_deployments(
        db, limit=limit, page=page, include_archived=include_archived, status=status, agent_id=agent_id
    )


@router.get("/{deployment_id}", response_model=Deployment)
async def retrieve_deployment(deployment_id: str, db: ReadSession) -> Deployment:
    """Retrieve a deployment with its upcoming scheduled runs."""
    return await service.get(db, deployment_id)


@router.post("/{deployment_id}", response_model=Deployment)
async def update_deployment(
    deployment_id: str, body: DeploymentUpdate, db: WriteSession, settings: SettingsDep
) -> Deployment:
    """Update a deployment; omitted fields keep their value, `schedule: null` makes it manual-only."""
    return await service.update(db, deployment_id, body, timing(settings))


@router.post("/{deployment_id}/archive", response_model=Deployment)
async def archive_deployment(deployment_id: str, db: WriteSession) -> Deployment:
    """Archive a deployment: it never fires again."""
    return await service.archive(db, deployment_id)


@router.post("/{deployment_id}/pause", response_model=Deployment)
async def pause_deployment(deployment_id: str, db: WriteSession) -> Deployment:
    """Pause the schedule (manual runs still work)."""
    return await service.pause(db, deployment_id)


@router.post("/{deployment_id}/unpause", response_model=Deployment)
async def unpause_deployment(deployment_id: str, db: WriteSession) -> Deployment:
    """Resume the schedule from the next slot."""
    return await service.unpause(db, deployment_id)


@router.post("/{deployment_id}/run", response_model=DeploymentRun)
async def run_deployment(deployment_id: str, db: WriteSession, notifier: NotifierDep) -> DeploymentRun:
    """Create a session from the deployment now; the run records it (or why it failed)."""
    return await service.run_now(db, notifier, deployment_id)


@runs_router.get("", response_model=DeploymentRunPage)
async def list_runs(
    db: ReadSession, limit: Limit = 20, page: str | None = None, deployment_id: str | None = None
) -> DeploymentRunPage:
    """List deployment runs, newest first."""
    return await service.list_runs(db, limit=limit, page=page, deployment_id=deployment_id)


@runs_router.get("/{deployment_run_id}", response_model=DeploymentRun)
async def retrieve_run(deployment_run_id: str, db: ReadSession) -> DeploymentRun:
    """Retrieve a deployment run."""
    return await service.get_run(db, deployment_run_id)
