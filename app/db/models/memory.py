from __future__ import annotations

from datetime import datetime

from pydantic import JsonValue
from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, JsonType

# Paths compare byte by byte on both databases (PostgreSQL's default collations ignore
# punctuation), so the range scans of app/memory_stores match Python's string order.
PathType = String(1024).with_variant(String(1024, collation="C"), "postgresql")


class MemoryStore(Base):
    """A named collection of text memories that sessions mount at /mnt/memory/<slug>/."""

    __tablename__ = "memory_stores"
    __table_args__ = (Index("ix_memory_stores_created_at", "created_at"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    description: Mapped[str] = mapped_column(Text)
    metadata_: Mapped[dict[str, str]] = mapped_column("metadata", JsonType)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    archived_at: Mapped[datetime | None]


class Memory(Base):
    """The current state of one memory: a text document at a unique path in its store."""

    __tablename__ = "memories"
    __table_args__ = (UniqueConstraint("memory_store_id", "path"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    memory_store_id: Mapped[str] = mapped_column(ForeignKey("memory_stores.id", ondelete="CASCADE"))
    path: Mapped[str] = mapped_column(PathType)
    content: Mapped[str] = mapped_column(Text)
    content_sha256: Mapped[str] = mapped_column(String(64))
    content_size_bytes: Mapped[int] = mapped_column(BigInteger)
    memory_version_id: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class MemoryVersion(Base):
    """One change to a memory, kept after the memory is deleted (with the store, it goes).

    ``conflict`` marks a write from a session's mount that was based on content changed since by
    someone else: it is kept here, attributed to the session, but not applied to the memory.
    """

    __tablename__ = "memory_versions"
    __table_args__ = (
        Index("ix_memory_versions_store_created_at", "memory_store_id", "created_at"),
        Index("ix_memory_versions_memory_id", "memory_id"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    memory_store_id: Mapped[str] = mapped_column(ForeignKey("memory_stores.id", ondelete="CASCADE"))
    memory_id: Mapped[str] = mapped_column(String(64))
    operation: Mapped[str] = mapped_column(String(16))
    path: Mapped[str | None] = mapped_column(PathType)
    content: Mapped[str | None] = mapped_column(Text)
    content_sha256: Mapped[str | None] = mapped_column(String(64))
    content_size_bytes: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime]
    # An ``Actor`` (memory_stores.schemas, above the database), validated when read.
    created_by: Mapped[dict[str, JsonValue] | None] = mapped_column(JsonType)
    # Who wrote it, for the list filters: exactly one is set when created_by is.
    session_id: Mapped[str | None] = mapped_column(String(64), index=True)
    api_key_id: Mapped[str | None] = mapped_column(String(64), index=True)
    conflict: Mapped[bool] = mapped_column(Boolean, default=False)
    redacted_at: Mapped[datetime | None]
    # An ``Actor``, as ``created_by``.
    redacted_by: Mapped[dict[str, JsonValue] | None] = mapped_column(JsonType)
