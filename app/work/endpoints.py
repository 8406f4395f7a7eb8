"""/v1/environments/{environment_id}/work: the self-hosted work queue (environment keys)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query

from app.api.deps import DatabaseDep, NotifierDep, ReadSession, SettingsDep, WriteSession
from app.work import polling, service
from app.work.schemas import Work, WorkHeartbeat, WorkPage, WorkQueueStats, WorkStop, WorkUpdate

router = APIRouter(prefix="/environments/{environment_id}/work", tags=["work"])

Limit = Annotated[int, Query(ge=1, le=100)]
BlockMs = Annotated[int | None, Query(ge=1, le=999)]
ReclaimMs = Annotated[int | None, Query(ge=0, le=86_400_000)]
WorkerId = Annotated[str | None, Header(alias="Anthropic-Worker-ID")]


@router.get("/poll", response_model=Work | None)
async def poll_work(
    environment_id: str,
    database: DatabaseDep,
    notifier: NotifierDep,
    block_ms: BlockMs = None,
    reclaim_older_than_ms: ReclaimMs = None,
    worker_id: WorkerId = None,
) -> Work | None:
    """Claim the oldest queued work item (null when there is none within `block_ms`)."""
    return await polling.long_poll(
        database,
        notifier,
        environment_id,
        worker_id=worker_id,
        block_ms=block_ms,
        reclaim_older_than_ms=reclaim_older_than_ms,
    )


@router.get("/stats", response_model=WorkQueueStats)
async def work_stats(environment_id: str, db: ReadSession) -> WorkQueueStats:
    """Queue depth, claimed-but-unacknowledged items, the oldest queued item and polling workers."""
    return await service.stats(db, environment_id)


@router.get("", response_model=WorkPage)
async def list_work(
    environment_id: str, db: ReadSession, limit: Limit = 20, page: str | None = None
) -> WorkPage:
    """List the environment's work items, newest first."""
    return await service.list_work(db, environment_id, limit=limit, page=page)


@router.get("/{work_id}", response_model=Work)
async def retrieve_work(environment_id: str, work_id: str, db: ReadSession) -> Work:
    """Retrieve a work item."""
    return await service.get(db, environment_id, work_id)


@router.post("/{work_id}", response_model=Work)
async def update_work(environment_id: str, work_id: str, body: WorkUpdate, db: WriteSession) -> Work:
    """Patch a work item's metadata (a string upserts, null deletes)."""
    return await service.update(db, environment_id, work_id, body.metadata)


@router.post("/{work_id}/ack", response_model=Work)
async def ack_work(environment_id: str, work_id: str, db: WriteSession, settings: SettingsDep) -> Work:
    """Acknowledge a polled work item: `queued` → `starting`."""
    return await service.ack(db, environment_id, work_id, settings.work_lease_ttl_seconds)


@router.post("/{work_id}/heartbeat", response_model=WorkHeartbeat)
async def heartbeat_work(
    environment_id: str,
    work_id: str,
    db: WriteSession,
    settings: SettingsDep,
    expected_last_heartbeat: str | None = None,
    desired_ttl_seconds: int | None = None,
) -> WorkHeartbeat:
    """Extend the lease; `expected_last_heartbeat` must echo the last value (412 otherwise)."""
    return await service.heartbeat(
        db,
        environment_id,
        work_id,
        expected_last_heartbeat=expected_last_heartbeat,
        desired_ttl_seconds=desired_ttl_seconds,
        max_ttl_seconds=settings.work_max_ttl_seconds,
    )


@router.post("/{work_id}/stop", response_model=Work)
async def stop_work(
    environment_id: str, work_id: str, db: WriteSession, body: WorkStop | None = None
) -> Work:
    """Stop a work item: gracefully (`stopping`) or, with `force`, at once (`stopped`)."""
    return await service.stop(db, environment_id, work_id, force=bool(body and body.force))
