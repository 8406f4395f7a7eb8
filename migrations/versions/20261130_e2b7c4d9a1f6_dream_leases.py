"""dreams: a lease held by the worker running the dream (a dead worker's dream is taken again)

Revision ID: e2b7c4d9a1f6
Revises: c4e1a7b9d2f3
Create Date: 2026-11-30 07:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.db.base

revision: str = 'e2b7c4d9a1f6'
down_revision: str | None = 'c4e1a7b9d2f3'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ADD COLUMNs (no batch mode: SQLite adds them in place).
    op.add_column('dreams', sa.Column('lease_owner', sa.String(length=128), nullable=True))
    op.add_column('dreams', sa.Column('lease_token', sa.BigInteger(), server_default='0', nullable=False))
    op.add_column('dreams', sa.Column('lease_expires_at', app.db.base.UtcDateTime(timezone=True), nullable=True))
    op.add_column('dreams', sa.Column('attempts', sa.Integer(), server_default='0', nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('dreams', schema=None) as batch_op:
        batch_op.drop_column('attempts')
        batch_op.drop_column('lease_expires_at')
        batch_op.drop_column('lease_token')
        batch_op.drop_column('lease_owner')
