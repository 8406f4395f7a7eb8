from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, JsonType
from app.shared.environment_config import EnvironmentConfig


class Environment(Base):
    __tablename__ = "environments"
    __table_args__ = (Index("ix_environments_created_at", "created_at"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(256))
    description: Mapped[str | None] = mapped_column(Text)
    config: Mapped[EnvironmentConfig] = mapped_column(JsonType)
    metadata_: Mapped[dict[str, str]] = mapped_column("metadata", JsonType)
    scope: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    archived_at: Mapped[datetime | None]
