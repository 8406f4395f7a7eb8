"""sessions.row_version: the database moves it on every UPDATE of a session's row, whatever the
statement sets and whoever runs it (the sessions list keeps a session's JSON by (id, row_version),
so a missed change would serve a stale session)."""

from __future__ import annotations

from typing import cast

import anthropic
import sqlalchemy as sa

from app.db.engine import Database
from app.db.models import Session
from tests.support.factories import make_session

SESSIONS = cast(sa.Table, Session.__table__)
_VERSION = sa.text("SELECT row_version FROM sessions WHERE id = :id")


async def _version(database: Database, session_id: str) -> int:
    async with database.read() as db:
        found = await db.scalar(_VERSION, {"id": session_id})
        return int(found)


async def test_every_update_of_any_column_moves_the_row_version(
    client: anthropic.Anthropic, database: Database
) -> None:
    session_id = make_session(client).id
    other_id = make_session(client).id
    other_before = await _version(database, other_id)
    before = await _version(database, session_id)
    for column in SESSIONS.columns:
        # Plain SQL that sets the column to its own value: the content stays, the version moves.
        async with database.unit_of_work() as db:
            await db.execute(
                sa.text(f'UPDATE sessions SET "{column.name}" = "{column.name}" WHERE id = :id'),
                {"id": session_id},
            )
        after = await _version(database, session_id)
        assert after == before + 1, f"an UPDATE of sessions.{column.name} did not move row_version"
        before = after
    assert await _version(database, other_id) == other_before, "only the updated row moves"


async def test_an_update_that_sets_the_version_itself_still_moves_it(
    client: anthropic.Anthropic, database: Database
) -> None:
    session_id = make_session(client).id
    before = await _version(database, session_id)
    async with database.unit_of_work() as db:
        await db.execute(
            sa.text("UPDATE sessions SET title = 'set with its version', row_version = :v WHERE id = :id"),
            {"id": session_id, "v": before},
        )
    assert await _version(database, session_id) == before + 1


async def test_the_orm_path_moves_the_row_version(client: anthropic.Anthropic, database: Database) -> None:
    session_id = make_session(client).id
    before = await _version(database, session_id)
    client.beta.sessions.update(session_id, title="through the API")
    assert await _version(database, session_id) > before
