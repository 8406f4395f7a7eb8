"""sessions: outcome evaluations (one entry per user.define_outcome)

Revision ID: e7b3c5a9d1f4
Revises: e2b7c4d9a1f6
Create Date: 2026-11-30 07:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

revision: str = 'e7b3c5a9d1f4'
down_revision: str | None = 'e2b7c4d9a1f6'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Not in batch mode (see the threads migration): a plain ADD COLUMN keeps the events.
    op.add_column('sessions', sa.Column('outcome_evaluations', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=True))


def downgrade() -> None:
    # Not in batch mode: on SQLite a batch drop recreates the table, and dropping the old sessions
    # table would cascade to their events.
    op.drop_column('sessions', 'outcome_evaluations')
