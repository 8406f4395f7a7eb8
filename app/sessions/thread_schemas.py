"""The SessionThread object and its page."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel

from app.db.session_json import PublicUsage

Status = Literal["rescheduling", "running", "idle", "terminated"]


class ThreadStats(BaseModel):
    active_seconds: float
    duration_seconds: float


class SessionThreadOut(BaseModel):
    id: str
    type: Literal["session_thread"] = "session_thread"
    session_id: str
    # JSON boundary: the thread's stored agent snapshot, cut to the keys the API shows.
    agent: dict[str, Any]
    status: Status
    parent_thread_id: str | None
    workflow_run_id: str | None = None
    stats: ThreadStats | None
    usage: PublicUsage | None
    created_at: datetime
    updated_at: datetime
    archived_at: datetime | None


class ThreadPage(BaseModel):
    data: list[SessionThreadOut]
    next_page: str | None
