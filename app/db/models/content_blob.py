from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base


class ContentBlob(Base):
    """Content addressed by its SHA-256, shared by every row that holds the same bytes.

    ``refs`` counts those rows; the content goes with the last reference (``app/storage``).
    """

    __tablename__ = "content_blobs"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    refs: Mapped[int] = mapped_column(Integer)
    # None: the bytes are in the blob backend (app/storage/blobs), not in the row.
    data: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[datetime]
