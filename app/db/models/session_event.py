from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base

# An autoincrementing 64-bit key; SQLite only autoincrements INTEGER PRIMARY KEY.
AutoBigInt = BigInteger().with_variant(Integer(), "sqlite")


class SessionEvent(Base):
    """One event of a session's append-only log.

    ``seq`` is the event's position in the log, given when it is processed (server events at
    once; client events when the agent consumes them). Queued client events have ``seq`` NULL.
    ``pk`` orders the queue of client events by arrival. ``data`` holds the event's wire fields
    (minus id, type and processed_at), ``harness`` what the agent loop records beside it.
    """

    __tablename__ = "session_events"
    __table_args__ = (
        Index("ix_session_events_session_seq", "session_id", "seq", unique=True),
        Index("ix_session_events_session_pk", "session_id", "pk"),
    )

    pk: Mapped[int] = mapped_column(AutoBigInt, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(64), unique=True)
    session_id: Mapped[str] = mapped_column(ForeignKey("sessions.id", ondelete="CASCADE"))
    seq: Mapped[int | None] = mapped_column(BigInteger)
    type: Mapped[str] = mapped_column(String(64))
    # JSON boundary: the event's wire fields (``events.types.EventRecord``, above the database),
    # typed where the event log reads them (``events.repository``).
    data: Mapped[dict[str, Any]]
    # The agent loop's bookkeeping beside the event (``events.types.Harness``); never on the wire.
    # JSON boundary: typed where the event log reads it, as ``data`` is.
    harness: Mapped[dict[str, Any] | None]
    created_at: Mapped[datetime]
    processed_at: Mapped[datetime | None]
