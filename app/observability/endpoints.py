"""`GET /metrics`: the Prometheus text exposition (behind an API key unless configured public)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Response

from app.api.auth import require_metrics_access
from app.api.deps import ReadSession, SettingsDep
from app.observability import service
from app.observability.metrics import CONTENT_TYPE, exposition

router = APIRouter()


@router.get("/metrics", include_in_schema=False, dependencies=[Depends(require_metrics_access)])
async def metrics(settings: SettingsDep, db: ReadSession) -> Response:
    """Every metric of this process (or of every process, in multi-process mode) and the database's gauges."""
    body = exposition(settings.prometheus_multiproc_dir, await service.database_gauges(db))
    return Response(body, media_type=CONTENT_TYPE)
