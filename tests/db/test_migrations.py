"""One set of Alembic migrations for both databases: the models and the migrations agree, and the
schema can be taken down and built again."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import json
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import pytest
import sqlalchemy as sa
from alembic import command

from app.db.base import JsonType
from app.db.engine import Database
from app.db.migrate import alembic_config
from app.events import service as events
from app.events.notifier import Notifier
from app.storage.blobs import LocalDiskBackend
from tests.conftest import make_settings
from tests.skills.factories import skill_files, unique_name
from tests.support.clients import strict_client
from tests.support.databases import fresh_database
from tests.support.factories import make_session
from tests.support.server import ServerThread


@pytest.fixture
def scratch_database(backend: str, tmp_path: Path) -> Iterator[str]:
    yield from fresh_database(backend, tmp_path)


def test_models_and_migrations_agree(scratch_database: str) -> None:
    command.check(alembic_config(scratch_database))  # raises on any drift


def test_downgrade_to_base_and_upgrade_again(scratch_database: str) -> None:
    config = alembic_config(scratch_database)
    command.downgrade(config, "base")
    command.upgrade(config, "head")
    command.check(config)


async def _event_row(url: str, event_id: str) -> dict[str, Any]:
    database = Database(url)
    try:
        async with database.read() as db:
            row = await db.execute(sa.text("SELECT * FROM session_events WHERE id = :id"), {"id": event_id})
            return dict(row.mappings().one())
    finally:
        await database.dispose()


async def _add_annotated_event(url: str, session_id: str) -> str:
    database = Database(url)
    try:
        async with database.unit_of_work() as db:
            rows = await events.append(
                db,
                Notifier(),
                session_id,
                [{"type": "agent.thread_context_compacted", "harness": {"summary": "what happened before"}}],
            )
        return str(rows[0]["id"])
    finally:
        await database.dispose()


@contextlib.contextmanager
def _served(database_url: str) -> Iterator[anthropic.Anthropic]:
    """A client of a server on the database (no worker), stopped when the block ends."""
    server = ServerThread(make_settings(database_url, embedded_worker=False)).start()
    try:
        with strict_client(server.url) as client:
            yield client
    finally:
        server.stop()


async def test_the_loop_bookkeeping_moves_between_data_and_its_column(scratch_database: str) -> None:
    with _served(scratch_database) as client:
        session_id = make_session(client).id
    event_id = await _add_annotated_event(scratch_database, session_id)
    config = alembic_config(scratch_database)

    row = await _event_row(scratch_database, event_id)
    assert _json(row["harness"]) == {"summary": "what happened before"} and _json(row["data"]) == {}
    # To just before the harness column (later migrations come off first).
    await asyncio.to_thread(command.downgrade, config, "d6ae2f50854e")
    row = await _event_row(scratch_database, event_id)
    assert "harness" not in row and _json(row["data"]) == {"_summary": "what happened before"}
    await asyncio.to_thread(command.upgrade, config, "head")
    row = await _event_row(scratch_database, event_id)
    assert _json(row["harness"]) == {"summary": "what happened before"} and _json(row["data"]) == {}


async def _blob_data(url: str, sha256: str) -> Any:
    database = Database(url)
    try:
        async with database.read() as db:
            return await db.scalar(sa.text("SELECT data FROM content_blobs WHERE sha256 = :s"), {"s": sha256})
    finally:
        await database.dispose()


async def test_skill_files_move_between_the_database_and_the_blob_backend(
    scratch_database: str, tmp_path: Path
) -> None:
    """The revision that moved skill files onto the blob backend, down and up again with content."""
    settings = make_settings(scratch_database, embedded_worker=False, storage_dir=tmp_path / "storage")
    name = unique_name()
    script = f"#!/bin/sh\necho {name}\n".encode()
    server = ServerThread(settings).start()
    try:
        with strict_client(server.url) as client:
            skill = client.beta.skills.create(files=skill_files(name, {"run.sh": script}))
    finally:
        server.stop()
    sha256 = hashlib.sha256(script).hexdigest()
    on_disk = LocalDiskBackend(settings.storage_dir).local_path(sha256)
    config = alembic_config(scratch_database, settings.storage_dir)

    await asyncio.to_thread(command.downgrade, config, "c3e9a7d5b2f1")
    assert await _blob_data(scratch_database, sha256) == script
    on_disk.unlink()  # the upgrade writes the bytes out again from the row
    await asyncio.to_thread(command.upgrade, config, "head")

    assert on_disk.read_bytes() == script
    server = ServerThread(settings).start()
    try:
        with strict_client(server.url) as client:
            data = client.beta.skills.versions.download(skill.latest_version_id, skill_id=skill.id).read()
    finally:
        server.stop()
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.read(f"{name}/run.sh") == script


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


async def _count(url: str, sql: str, **params: Any) -> int:
    database = Database(url)
    try:
        async with database.read() as db:
            return int(await db.scalar(sa.text(sql), params) or 0)
    finally:
        await database.dispose()


async def test_downgrades_keep_sessions_and_their_events(scratch_database: str) -> None:
    """Downgrading through migrations that rebuild ``sessions`` on SQLite (batch mode copies the
    table and drops the old one) must not cascade to the events; files on disk do not stop a
    downgrade past the files migration either."""
    with _served(scratch_database) as client:
        session_id = make_session(client).id
        client.beta.sessions.events.send(
            session_id, events=[{"type": "user.message", "content": [{"type": "text", "text": "hi"}]}]
        )
        client.beta.files.upload(file=("kept.bin", b"on disk" * 100))
    await _add_annotated_event(scratch_database, session_id)
    events_sql = "SELECT count(*) FROM session_events WHERE session_id = :id"
    before = await _count(scratch_database, events_sql, id=session_id)
    assert before >= 2
    config = alembic_config(scratch_database)

    # Past the repository tokens, the harness column and the deployments (each alters sessions).
    await asyncio.to_thread(command.downgrade, config, "0e3cfcc12c22")
    assert await _count(scratch_database, "SELECT count(*) FROM sessions WHERE id = :id", id=session_id) == 1
    assert await _count(scratch_database, events_sql, id=session_id) == before
    # Past the files migration, whose blobs on disk have no place in the older schema.
    await asyncio.to_thread(command.downgrade, config, "c02e71b20da2")
    assert await _count(scratch_database, events_sql, id=session_id) == before

    await asyncio.to_thread(command.upgrade, config, "head")
    with _served(scratch_database) as client:
        listed = [e.type for e in client.beta.sessions.events.list(session_id)]
        assert "user.message" in listed and "agent.thread_context_compacted" in listed


_SESSIONS = sa.table("sessions", sa.column("id", sa.String()), sa.column("usage", JsonType))


async def _usage(url: str, session_id: str, usage: dict[str, Any] | None = None) -> Any:
    """The session's stored usage (after writing ``usage``, when given)."""
    database = Database(url)
    try:
        async with database.unit_of_work() as db:
            if usage is not None:
                await db.execute(_SESSIONS.update().where(_SESSIONS.c.id == session_id).values(usage=usage))
            return _json(await db.scalar(sa.select(_SESSIONS.c.usage).where(_SESSIONS.c.id == session_id)))
    finally:
        await database.dispose()


async def test_the_exact_cost_moves_between_its_old_and_new_usage_key(scratch_database: str) -> None:
    with _served(scratch_database) as client:
        session_id = make_session(client).id
    spent = {**await _usage(scratch_database, session_id), "cost_usd": "0.012345"}
    await _usage(scratch_database, session_id, spent)
    config = alembic_config(scratch_database)

    await asyncio.to_thread(command.downgrade, config, "75dc83843bbc")
    usage = await _usage(scratch_database, session_id)
    assert usage["_cost_usd"] == "0.012345" and "cost_usd" not in usage
    await asyncio.to_thread(command.upgrade, config, "head")
    usage = await _usage(scratch_database, session_id)
    assert usage["cost_usd"] == "0.012345" and "_cost_usd" not in usage
    assert {k: v for k, v in usage.items() if k != "cost_usd"} == {
        k: v for k, v in spent.items() if k != "cost_usd"
    }
