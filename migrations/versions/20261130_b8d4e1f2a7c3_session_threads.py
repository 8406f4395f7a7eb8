"""sessions: child threads (a thread of a multi-agent session is a session row with a parent)

Revision ID: b8d4e1f2a7c3
Revises: 90567957ad95
Create Date: 2026-11-30 03:55:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'b8d4e1f2a7c3'
down_revision: str | None = '90567957ad95'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Not in batch mode: on SQLite a batch may recreate the table, and dropping the old sessions
    # table would cascade to their events.
    op.add_column('sessions', sa.Column('parent_session_id', sa.String(length=64), nullable=True))
    op.create_index(op.f('ix_sessions_parent_session_id'), 'sessions', ['parent_session_id'], unique=False)


def downgrade() -> None:
    # Not in batch mode: on SQLite a batch drop recreates the table, and dropping the old sessions
    # table would cascade to their events.
    op.drop_index(op.f('ix_sessions_parent_session_id'), table_name='sessions')
    op.drop_column('sessions', 'parent_session_id')
