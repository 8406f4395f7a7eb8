from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base


class ContentBlob(Base):
    """Content addressed by its SHA-256, shared by every row that holds the same bytes.

    ``refs`` counts those rows; the bytes are in the blob backend (``app/storage/blobs``) and
    go with the sweep after the last reference (``app/storage``).
    """

    __tablename__ = "content_blobs"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    refs: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime]
