"""workflow runs (multiagent_20261001 `workflows`) and the run that created a thread

Revision ID: 75dc83843bbc
Revises: f3c8d1a6b2e9
Create Date: 2026-11-30 10:17:30.028850
"""

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy import Text
from alembic import op
from sqlalchemy.dialects import postgresql
import app.db.base

revision: str = '75dc83843bbc'
down_revision: str | None = 'f3c8d1a6b2e9'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('workflow_runs',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('session_id', sa.String(length=64), nullable=False),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('phases', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('phase_index', sa.Integer(), nullable=False),
    sa.Column('phase_started_id', sa.String(length=64), nullable=True),
    sa.Column('phase_thread_ids', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=False),
    sa.Column('results', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=False),
    sa.Column('threads_created', sa.Integer(), nullable=False),
    sa.Column('result', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=True),
    sa.Column('deadline_at', app.db.base.UtcDateTime(timezone=True), nullable=False),
    sa.Column('created_at', app.db.base.UtcDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', app.db.base.UtcDateTime(timezone=True), nullable=False),
    sa.Column('ended_at', app.db.base.UtcDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_workflow_runs'))
    )
    op.create_index(op.f('ix_workflow_runs_session_id'), 'workflow_runs', ['session_id'], unique=False)
    # Not in batch mode (see the threads migration): a plain ADD COLUMN keeps the events.
    op.add_column('sessions', sa.Column('workflow_run_id', sa.String(length=64), nullable=True))
    op.create_index(op.f('ix_sessions_workflow_run_id'), 'sessions', ['workflow_run_id'], unique=False)


def downgrade() -> None:
    # Not in batch mode: on SQLite a batch drop recreates the table, and dropping the old sessions
    # table would cascade to their events.
    op.drop_index(op.f('ix_sessions_workflow_run_id'), table_name='sessions')
    op.drop_column('sessions', 'workflow_run_id')
    op.drop_index(op.f('ix_workflow_runs_session_id'), table_name='workflow_runs')
    op.drop_table('workflow_runs')
