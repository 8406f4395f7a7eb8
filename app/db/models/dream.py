from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, JsonType
from app.db.dream_json import DreamErrorJson, DreamModel, DreamOutputBehavior, DreamUsageTotals


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
    session_ids: Mapped[list[str]] = mapped_column(JsonType)
    model: Mapped[DreamModel] = mapped_column(JsonType)
    instructions: Mapped[str | None] = mapped_column(Text)
    output_behavior: Mapped[DreamOutputBehavior] = mapped_column(JsonType)
    output_store_id: Mapped[str | None] = mapped_column(String(64))
    session_id: Mapped[str | None] = mapped_column(String(64))
    error: Mapped[DreamErrorJson | None] = mapped_column(JsonType)
    usage: Mapped[DreamUsageTotals] = mapped_column(JsonType)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]
    archived_at: Mapped[datetime | None]
    # The worker running the dream holds a lease it renews; a running dream whose lease expired
    # (its worker died) is claimed again, up to a bounded number of attempts.
    lease_owner: Mapped[str | None] = mapped_column(String(128))
    lease_token: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    lease_expires_at: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
