from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, JsonType
from app.db.deployment_json import PausedReason, RunError
from app.db.session_json import Budget, ResourceJson


class Deployment(Base):
    """An agent bound to an environment, initial events and an optional cron schedule.

    `next_slot_at` is the next cron slot (UTC, before jitter) for an active schedule; the
    scheduler claims a slot by moving it forward with a compare-and-set, so one process fires it.
    """

    __tablename__ = "deployments"
    __table_args__ = (
        Index("ix_deployments_created_at", "created_at"),
        Index("ix_deployments_next_slot_at", "next_slot_at"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(256))
    description: Mapped[str | None] = mapped_column(Text)
    agent_id: Mapped[str] = mapped_column(String(64))
    agent_version: Mapped[int]
    environment_id: Mapped[str] = mapped_column(String(64))
    initial_events: Mapped[list[Any]]
    metadata_: Mapped[dict[str, str]] = mapped_column("metadata", JsonType)
    resources: Mapped[list[ResourceJson]] = mapped_column(JsonType)
    vault_ids: Mapped[list[Any]]
    budget: Mapped[Budget | None] = mapped_column(JsonType)
    schedule_expression: Mapped[str | None] = mapped_column(String(256))
    schedule_timezone: Mapped[str | None] = mapped_column(String(64))
    jitter_seconds: Mapped[float]
    next_slot_at: Mapped[datetime | None]
    last_run_at: Mapped[datetime | None]
    status: Mapped[str] = mapped_column(String(16))
    paused_reason: Mapped[PausedReason | None] = mapped_column(JsonType)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    archived_at: Mapped[datetime | None]


class DeploymentRun(Base):
    """One firing: the session it created or why it could not. At most one per scheduled slot."""

    __tablename__ = "deployment_runs"
    __table_args__ = (
        UniqueConstraint("deployment_id", "scheduled_at", name="uq_deployment_runs_slot"),
        Index("ix_deployment_runs_created_at", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    deployment_id: Mapped[str] = mapped_column(String(64), ForeignKey("deployments.id", ondelete="CASCADE"))
    agent_id: Mapped[str] = mapped_column(String(64))
    agent_version: Mapped[int]
    session_id: Mapped[str | None] = mapped_column(String(64))
    error: Mapped[RunError | None] = mapped_column(JsonType)
    trigger: Mapped[str] = mapped_column(String(16))
    scheduled_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
