"""sessions: a partial index on (created_at, id) of the rows the sessions list shows

Revision ID: 07467c34f7cc
Revises: fb73c88554c1
Create Date: 2026-11-30 17:00:00

The sessions list without filters reads its page as ``WHERE archived_at IS NULL AND
parent_session_id IS NULL ORDER BY created_at, id LIMIT n``. Without statistics (mas never runs
ANALYZE) SQLite took ``ix_sessions_parent_session_id`` for ``parent_session_id IS NULL`` (an
equality to it), read every session that is not a thread and sorted them all for one page: O(all
sessions) per request. This index holds exactly the listed rows in the list's order, so a page is
the next n entries of it; the list names it on SQLite (``INDEXED BY``), PostgreSQL's planner picks
it from its statistics.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "07467c34f7cc"
down_revision: str | None = "fb73c88554c1"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LISTED = "archived_at IS NULL AND parent_session_id IS NULL"


def upgrade() -> None:
    op.create_index(
        "ix_sessions_listed",
        "sessions",
        ["created_at", "id"],
        sqlite_where=sa.text(LISTED),
        postgresql_where=sa.text(LISTED),
    )


def downgrade() -> None:
    op.drop_index("ix_sessions_listed", table_name="sessions")
