from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, JsonType


class EnvironmentKey(Base):
    """A worker's credential for one self-hosted environment. Only its SHA-256 is stored."""

    __tablename__ = "environment_keys"
    __table_args__ = (Index("ix_environment_keys_environment_id", "environment_id", "created_at"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    environment_id: Mapped[str] = mapped_column(String(64), ForeignKey("environments.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(256))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    hint: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]


class WorkItem(Base):
    """One unit of work of a self-hosted environment: serve a session's tool calls.

    `polled_at` marks a claim that is not acknowledged yet (the item is still `queued`);
    `lease_expires_at` bounds a claimed item whose worker stopped heartbeating. `token_hash` is the
    SHA-256 of the sessions token handed out with the latest poll (older tokens stop working).
    """

    __tablename__ = "work_items"
    __table_args__ = (
        Index("ix_work_items_queue", "environment_id", "state", "created_at"),
        Index("ix_work_items_session_id", "session_id"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    environment_id: Mapped[str] = mapped_column(String(64), ForeignKey("environments.id", ondelete="CASCADE"))
    session_id: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16))
    metadata_: Mapped[dict[str, str]] = mapped_column("metadata", JsonType)
    created_at: Mapped[datetime]
    queued_at: Mapped[datetime]
    polled_at: Mapped[datetime | None]
    worker_id: Mapped[str | None] = mapped_column(String(256))
    acknowledged_at: Mapped[datetime | None]
    started_at: Mapped[datetime | None]
    latest_heartbeat_at: Mapped[datetime | None]
    last_heartbeat: Mapped[str | None] = mapped_column(String(64))
    ttl_seconds: Mapped[int]
    lease_expires_at: Mapped[datetime | None]
    stop_requested_at: Mapped[datetime | None]
    stopped_at: Mapped[datetime | None]
    token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    attempts: Mapped[int]


class WorkPoller(Base):
    """When a worker (by its `Anthropic-Worker-ID`) last polled an environment."""

    __tablename__ = "work_pollers"

    environment_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("environments.id", ondelete="CASCADE"), primary_key=True
    )
    worker_id: Mapped[str] = mapped_column(String(256), primary_key=True)
    last_polled_at: Mapped[datetime]
