from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base


class WorkflowRun(Base):
    """A workflow run of a multi-agent session: a plan of phases, each a set of agent tasks run
    as threads in parallel, a phase starting once the one before it has every reply."""

    __tablename__ = "workflow_runs"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    session_id: Mapped[str] = mapped_column(String(64), index=True)
    name: Mapped[str] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text)
    # [{id, name, description, tasks: [{agent: <thread agent snapshot>, message}]}], as planned.
    phases: Mapped[list[Any]]
    # running | idle | ended
    status: Mapped[str] = mapped_column(String(16))
    # The phase being worked on (index into `phases`), the `workflow_run.phase_started` event that
    # opened it (null while none is open), and its threads, in task order.
    phase_index: Mapped[int] = mapped_column(Integer, default=0)
    phase_started_id: Mapped[str | None] = mapped_column(String(64))
    phase_thread_ids: Mapped[list[Any]]
    # [[{thread_id, agent_name, text}, ...] per finished phase], what later phases are told.
    results: Mapped[list[Any]]
    threads_created: Mapped[int] = mapped_column(Integer, default=0)
    # JSON boundary: how the run ended (``events.types.WorkflowRunResult``, above the database).
    result: Mapped[dict[str, Any] | None]
    deadline_at: Mapped[datetime]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]
