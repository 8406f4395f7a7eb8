from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db.base import Base, JsonType
from app.shared.agent_config import AgentConfig


class Agent(Base):
    """The identity of an agent; its configuration lives in immutable versions."""

    __tablename__ = "agents"
    __table_args__ = (Index("ix_agents_created_at", "created_at"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    archived_at: Mapped[datetime | None]

    versions: Mapped[list[AgentVersion]] = relationship(lazy="raise", back_populates="agent")


class AgentVersion(Base):
    """One immutable snapshot of an agent's configuration (name, model, tools, metadata, ...)."""

    __tablename__ = "agent_versions"

    agent_id: Mapped[str] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    config: Mapped[AgentConfig] = mapped_column(JsonType)
    created_at: Mapped[datetime]

    agent: Mapped[Agent] = relationship(lazy="raise", back_populates="versions")
