from __future__ import annotations

from datetime import datetime

from pydantic import JsonValue
from sqlalchemy import BigInteger, Boolean, Float, Index, Integer, String, Text, false, text
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, JsonType
from app.db.session_json import Budget, ResourceJson, StoredOutcomeEvaluation, UsageTotals
from app.shared.agent_config import SessionAgent

# Not archived, not a thread: the sessions the list shows (without `include_archived`).
LISTED = "archived_at IS NULL AND parent_session_id IS NULL"


class Session(Base):
    """A session: the agent snapshot, its status, and the worker lease that runs it."""

    __tablename__ = "sessions"
    __table_args__ = (
        Index("ix_sessions_created_at", "created_at"),
        Index("ix_sessions_agent_id", "agent_id"),
        Index("ix_sessions_wake_at", "wake_at"),
        # The rows the sessions list shows, in its order (migration 07467c34f7cc).
        Index(
            "ix_sessions_listed",
            "created_at",
            "id",
            sqlite_where=text(LISTED),
            postgresql_where=text(LISTED),
        ),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    agent_id: Mapped[str] = mapped_column(String(64))
    agent_version: Mapped[int] = mapped_column(Integer)
    agent: Mapped[SessionAgent] = mapped_column(JsonType)
    environment_id: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(32))
    title: Mapped[str | None] = mapped_column(Text)
    metadata_: Mapped[dict[str, str]] = mapped_column("metadata", JsonType)
    vault_ids: Mapped[list[str]] = mapped_column(JsonType)
    resources: Mapped[list[ResourceJson]] = mapped_column(JsonType)
    # Sealed authorization tokens of github_repository resources, by resource id (never clear text).
    resource_tokens: Mapped[dict[str, str] | None] = mapped_column(JsonType)
    usage: Mapped[UsageTotals] = mapped_column(JsonType)
    # Ids of the tool-use events the session waits on while idle with requires_action.
    pending_action_ids: Mapped[list[str]] = mapped_column(JsonType)
    # Ids of the tool uses whose execution has started but not been recorded: after a crash
    # their outcome is unknown, so they are reported to the model as errors, never run twice.
    inflight_tool_ids: Mapped[list[str]] = mapped_column(JsonType)
    active_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    running_since: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    archived_at: Mapped[datetime | None]
    terminated_at: Mapped[datetime | None]
    # Highest `seq` handed out in this session's event log (appends lock this row).
    last_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    # Highest `seq` any stream connection has been sent: the replay rule starts after it.
    stream_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    # Worker scheduling: runnable when wake_at <= now and no live lease.
    wake_at: Mapped[datetime | None]
    lease_owner: Mapped[str | None] = mapped_column(String(128))
    lease_token: Mapped[int] = mapped_column(BigInteger, default=0)
    deployment_id: Mapped[str | None] = mapped_column(String(64), index=True)
    # A child thread of a multi-agent session is a session row of its own (its own log, lease and
    # status) whose parent is the session; such rows are never served as sessions.
    parent_session_id: Mapped[str | None] = mapped_column(String(64), index=True)
    # The workflow run that created this child thread (null for any other thread and sessions).
    workflow_run_id: Mapped[str | None] = mapped_column(String(64), index=True)
    # The spend ceiling (`{type: "limit", max_list_cost}`); a removed budget cannot come back.
    budget: Mapped[Budget | None] = mapped_column(JsonType)
    budget_removed: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # One entry per `user.define_outcome`, as `Session.outcome_evaluations` shows it (see
    # `sessions.outcomes`); null on sessions created before outcomes existed.
    outcome_evaluations: Mapped[list[StoredOutcomeEvaluation] | None] = mapped_column(JsonType)
    # Skills found in the repository resources' `.claude/skills` (`skills.discovery.RepoSkills`),
    # scanned once before the first model request; null: not scanned (yet).
    # Read through `RepoSkills.model_validate` (skills sit above db).
    repo_skills: Mapped[dict[str, JsonValue] | None] = mapped_column(JsonType)
    lease_expires_at: Mapped[datetime | None]
    # W3C traceparent of the request that last asked the session to run (tracing on): the
    # worker's turn span continues that trace.
    trace_parent: Mapped[str | None] = mapped_column(String(64))
    # Moved on by a trigger at every UPDATE of the row (migration fb73c88554c1), never written by
    # mas: the sessions list keeps a session's JSON by (id, row_version).
    row_version: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
