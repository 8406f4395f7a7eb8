"""sessions: skills discovered in the repository resources' .claude/skills (scanned once)

Revision ID: f3c8d1a6b2e9
Revises: e7b3c5a9d1f4
Create Date: 2026-11-30 07:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

revision: str = 'f3c8d1a6b2e9'
down_revision: str | None = 'e7b3c5a9d1f4'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Not in batch mode (see the threads migration): a plain ADD COLUMN keeps the events.
    op.add_column('sessions', sa.Column('repo_skills', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=True))


def downgrade() -> None:
    # Not in batch mode: on SQLite a batch drop recreates the table, and dropping the old sessions
    # table would cascade to their events.
    op.drop_column('sessions', 'repo_skills')
