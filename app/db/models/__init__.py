"""All tables. Import this package so Alembic sees the full metadata."""

from app.db.models.agent import Agent, AgentVersion
from app.db.models.api_key import ApiKey
from app.db.models.environment import Environment
from app.db.models.session import Session
from app.db.models.session_event import SessionEvent

__all__ = ["Agent", "AgentVersion", "ApiKey", "Environment", "Session", "SessionEvent"]
