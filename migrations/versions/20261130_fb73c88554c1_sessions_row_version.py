"""sessions.row_version: a number every UPDATE of the row moves on, kept by the database itself

Revision ID: fb73c88554c1
Revises: 9c1d7e5a3b20
Create Date: 2026-11-30 16:40:00

The sessions list keeps each session's rendered JSON by (id, row_version) and reads only those two
columns (and created_at) for a page it has seen. A trigger moves the version on every UPDATE of the
row, whatever column it sets and whoever runs it (the ORM, plain SQL, another process), so a kept
rendering is never served for a changed row:

* PostgreSQL: a BEFORE UPDATE trigger sets ``NEW.row_version = OLD.row_version + 1`` (even a
  statement that sets the version itself gets the next one).
* SQLite (no BEFORE trigger can change NEW): an AFTER UPDATE trigger updates the row's version
  when the statement left it as it was; the trigger's own UPDATE changes it, so the guard stops it
  there even with ``recursive_triggers`` on.

On SQLite a table rebuilt by a later batch migration loses its triggers: such a migration must
create this one again (``tests/db/test_row_versions.py`` fails at head without it).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "fb73c88554c1"
down_revision: str | None = "9c1d7e5a3b20"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SQLITE_TRIGGER = """
CREATE TRIGGER sessions_row_version AFTER UPDATE ON sessions
FOR EACH ROW WHEN NEW.row_version = OLD.row_version
BEGIN
    UPDATE sessions SET row_version = OLD.row_version + 1 WHERE id = OLD.id;
END
"""
POSTGRES_FUNCTION = """
CREATE FUNCTION sessions_row_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.row_version := OLD.row_version + 1;
    RETURN NEW;
END
$$
"""
POSTGRES_TRIGGER = """
CREATE TRIGGER sessions_row_version BEFORE UPDATE ON sessions
FOR EACH ROW EXECUTE FUNCTION sessions_row_version()
"""


def upgrade() -> None:
    op.add_column("sessions", sa.Column("row_version", sa.BigInteger(), server_default="0", nullable=False))
    if op.get_bind().dialect.name == "postgresql":
        op.execute(POSTGRES_FUNCTION)
        op.execute(POSTGRES_TRIGGER)
    else:
        op.execute(SQLITE_TRIGGER)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER sessions_row_version ON sessions")
        op.execute("DROP FUNCTION sessions_row_version()")
    else:
        op.execute("DROP TRIGGER sessions_row_version")
    with op.batch_alter_table("sessions") as batch:
        batch.drop_column("row_version")
