"""sessions: trace parent (the request that last woke the session, for the worker's turn span)

Revision ID: c4e1a7b9d2f3
Revises: b7d4e19a2c53
Create Date: 2026-11-30 04:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'c4e1a7b9d2f3'
down_revision: str | None = 'b7d4e19a2c53'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('sessions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('trace_parent', sa.String(length=64), nullable=True))


def downgrade() -> None:
    # Not in batch mode: on SQLite a batch drop recreates the table, and dropping the old sessions
    # table would cascade to their events.
    op.drop_column('sessions', 'trace_parent')
