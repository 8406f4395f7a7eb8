from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base


class StoredFile(Base):
    """A Files API file: metadata here, bytes in the content store under ``sha256``.

    ``origin`` is ``upload`` (counted against the storage quota), ``session_copy`` (the
    read-only copy a session mounts; shares the upload's bytes) or ``output`` (written by the
    agent under /mnt/session/outputs). ``scope_session_id`` is the session a file belongs to;
    such files go with the session.
    """

    __tablename__ = "files"
    __table_args__ = (
        Index("ix_files_created_at", "created_at", "id"),
        Index("ix_files_scope_session_id", "scope_session_id", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    filename: Mapped[str] = mapped_column(Text)
    mime_type: Mapped[str] = mapped_column(String(255))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    # None once the bytes are gone (expired); the metadata stays until the file is deleted.
    sha256: Mapped[str | None] = mapped_column(String(64))
    origin: Mapped[str] = mapped_column(String(16))
    downloadable: Mapped[bool] = mapped_column(Boolean)
    scope_session_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime | None]
