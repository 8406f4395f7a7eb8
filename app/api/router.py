"""The /v1 router: every resource router, all behind authentication (API keys; the scoped worker
credentials of `app.api.scopes`)."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from app.agent_loop.cassettes.endpoints import router as cassettes_router
from app.agents.endpoints import router as agents_router
from app.api.auth import require_api_key
from app.api.query import reject_nul
from app.deployments.endpoints import router as deployments_router
from app.deployments.endpoints import runs_router as deployment_runs_router
from app.dreams.endpoints import router as dreams_router
from app.environments.endpoints import router as environments_router
from app.envkeys.endpoints import router as envkeys_router
from app.events.endpoints import router as events_router
from app.files.endpoints import router as files_router
from app.memory_stores.endpoints import router as memory_stores_router
from app.sessions.endpoints import router as sessions_router
from app.skills.endpoints import router as skills_router
from app.vaults.endpoints import router as vaults_router
from app.webhooks.endpoints import router as webhooks_router
from app.work.endpoints import router as work_router


def build_v1_router() -> APIRouter:
    router = APIRouter(prefix="/v1", dependencies=[Depends(require_api_key), Depends(reject_nul)])
    router.include_router(agents_router)
    router.include_router(environments_router)
    router.include_router(envkeys_router)
    router.include_router(work_router)
    router.include_router(webhooks_router)
    router.include_router(sessions_router)
    router.include_router(events_router)
    router.include_router(skills_router)
    router.include_router(files_router)
    router.include_router(memory_stores_router)
    router.include_router(dreams_router)
    router.include_router(deployments_router)
    router.include_router(deployment_runs_router)
    router.include_router(vaults_router)
    router.include_router(cassettes_router)
    return router
