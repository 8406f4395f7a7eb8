"""sessions: budgets (a spend ceiling on list cost)

Revision ID: c3e9a7d5b2f1
Revises: b8d4e1f2a7c3
Create Date: 2026-11-30 04:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy import Text
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = 'c3e9a7d5b2f1'
down_revision: str | None = 'b8d4e1f2a7c3'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Not in batch mode (see the threads migration): plain ADD COLUMNs keep the events.
    op.add_column('sessions', sa.Column('budget', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=True))
    op.add_column('sessions', sa.Column('budget_removed', sa.Boolean(), server_default=sa.false(), nullable=False))


def downgrade() -> None:
    # Not in batch mode: on SQLite a batch drop recreates the table, and dropping the old sessions
    # table would cascade to their events.
    op.drop_column('sessions', 'budget_removed')
    op.drop_column('sessions', 'budget')
