"""session_events.harness: the agent loop's bookkeeping moves out of the event's data

Revision ID: 7f3c9a2e4b61
Revises: d6ae2f50854e
Create Date: 2026-11-30 00:30:00

Until now the loop kept its records (raw assistant content, stop reason, compaction summary, tool
ids) as ``_``-prefixed keys inside ``data``. They move to a column of their own, unprefixed.
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

revision: str = "7f3c9a2e4b61"
down_revision: str | None = "d6ae2f50854e"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql")
# The event types the loop ever annotated.
ANNOTATED = (
    "span.model_request_end",
    "agent.thread_context_compacted",
    "agent.tool_use",
    "agent.custom_tool_use",
    "agent.mcp_tool_use",
)
BATCH = 500


def _events() -> sa.Table:
    return sa.table(
        "session_events",
        sa.column("pk", sa.BigInteger()),
        sa.column("type", sa.String()),
        sa.column("data", JSON),
        sa.column("harness", JSON),
    )


def _move(split: Any) -> None:
    """Rewrite annotated rows in primary-key batches with ``split(data, harness)``."""
    events, bind, last = _events(), op.get_bind(), -1
    while True:
        rows = bind.execute(
            sa.select(events.c.pk, events.c.data, events.c.harness)
            .where(events.c.type.in_(ANNOTATED), events.c.pk > last)
            .order_by(events.c.pk)
            .limit(BATCH)
        ).all()
        if not rows:
            return
        for pk, data, harness in rows:
            changed = split(dict(data or {}), dict(harness or {}))
            if changed is not None:
                bind.execute(
                    events.update()
                    .where(events.c.pk == pk)
                    .values(data=changed[0], harness=changed[1] or None)
                )
        last = rows[-1][0]


def _out(data: dict[str, Any], harness: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]] | None:
    private = {k: v for k, v in data.items() if k.startswith("_")}
    if not private:
        return None
    public = {k: v for k, v in data.items() if not k.startswith("_")}
    return public, {**harness, **{k[1:]: v for k, v in private.items()}}


def _back(data: dict[str, Any], harness: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]] | None:
    if not harness:
        return None
    return {**data, **{f"_{k}": v for k, v in harness.items()}}, {}


def upgrade() -> None:
    op.add_column("session_events", sa.Column("harness", JSON, nullable=True))
    _move(_out)


def downgrade() -> None:
    _move(_back)
    op.drop_column("session_events", "harness")
