"""sessions.usage: the exact list cost is kept under ``cost_usd`` (was ``_cost_usd``)

Revision ID: 9c1d7e5a3b20
Revises: 75dc83843bbc
Create Date: 2026-11-30 14:50:00

The cost a session's (or thread's) ``list_cost`` rounds to cents is bookkeeping beside the public
usage fields; it was a ``_``-prefixed key. It is now the typed ``UsageTotals.cost_usd``.
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

revision: str = "9c1d7e5a3b20"
down_revision: str | None = "75dc83843bbc"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql")
BATCH = 500


def _rename(old: str, new: str) -> None:
    """Move ``usage[old]`` to ``usage[new]`` on every row that has it, in id batches."""
    sessions = sa.table("sessions", sa.column("id", sa.String()), sa.column("usage", JSON))
    bind, last = op.get_bind(), ""
    while True:
        rows = bind.execute(
            sa.select(sessions.c.id, sessions.c.usage)
            .where(sessions.c.id > last)
            .order_by(sessions.c.id)
            .limit(BATCH)
        ).all()
        if not rows:
            return
        for session_id, usage in rows:
            if isinstance(usage, dict) and old in usage:
                moved: dict[str, Any] = {k: v for k, v in usage.items() if k != old}
                moved[new] = usage[old]
                bind.execute(sessions.update().where(sessions.c.id == session_id).values(usage=moved))
        last = rows[-1][0]


def upgrade() -> None:
    _rename("_cost_usd", "cost_usd")


def downgrade() -> None:
    _rename("cost_usd", "_cost_usd")
