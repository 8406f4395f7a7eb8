from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base


class Dream(Base):
    """A job that reads sessions and a memory store and writes a reorganised memory store."""

    __tablename__ = "dreams"
    __table_args__ = (
        Index("ix_dreams_created_at", "created_at"),
        Index("ix_dreams_status", "status"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    status: Mapped[str] = mapped_column(String(16))
    # The input store, and the store written in place for `update_existing` (else null).
    memory_store_id: Mapped[str] = mapped_column(String(64))
    update_store_id: Mapped[str | None] = mapped_column(String(64), index=True)
    session_ids: Mapped[list[Any]]
    model: Mapped[dict[str, Any]]
    instructions: Mapped[str | None] = mapped_column(Text)
    output_behavior: Mapped[dict[str, Any]]
    output_store_id: Mapped[str | None] = mapped_column(String(64))
    session_id: Mapped[str | None] = mapped_column(String(64))
    error: Mapped[dict[str, Any] | None]
    usage: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]
    archived_at: Mapped[datetime | None]
