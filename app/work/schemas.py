"""Schemas of the self-hosted work queue, after the SDK's `BetaSelfHostedWork*` types."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

WorkState = Literal["queued", "starting", "active", "stopping", "stopped"]


class SessionWorkData(BaseModel):
    type: Literal["session"] = "session"
    id: str


class Work(BaseModel):
    type: Literal["work"] = "work"
    id: str
    environment_id: str
    data: SessionWorkData
    state: WorkState
    metadata: dict[str, str]
    created_at: datetime
    acknowledged_at: datetime | None
    started_at: datetime | None
    latest_heartbeat_at: datetime | None
    stop_requested_at: datetime | None
    stopped_at: datetime | None
    secret: str | None = None


class WorkPage(BaseModel):
    data: list[Work]
    next_page: str | None


class WorkHeartbeat(BaseModel):
    type: Literal["work_heartbeat"] = "work_heartbeat"
    last_heartbeat: str
    lease_extended: bool
    state: WorkState
    ttl_seconds: int


class WorkQueueStats(BaseModel):
    type: Literal["work_queue_stats"] = "work_queue_stats"
    depth: int
    pending: int
    oldest_queued_at: datetime | None
    workers_polling: int | None


class WorkStop(BaseModel):
    model_config = ConfigDict(extra="ignore")

    force: bool | None = None


class WorkUpdate(BaseModel):
    model_config = ConfigDict(extra="ignore")

    metadata: dict[str, str | None]
