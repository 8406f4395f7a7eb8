"""Alembic environment: async engine, one set of migrations for SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from logging.config import fileConfig

from alembic import context
from sqlalchemy import text
from sqlalchemy.engine import Connection

import app.db.models  # noqa: F401  (registers every table)
from app.config import get_settings
from app.db.base import Base
from app.db.engine import create_engine

config = context.config
if config.config_file_name is not None and config.attributes.get("configure_logging", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = Base.metadata


def _url() -> str:
    return str(config.attributes.get("database_url") or get_settings().database_url)


def _sqlite_pragma(connection: Connection, pragma: str) -> list[tuple[object, ...]]:
    """Run a PRAGMA on the DBAPI connection itself: through SQLAlchemy it would first open a
    transaction, inside which ``foreign_keys`` cannot be changed."""
    cursor = connection.connection.cursor()
    try:
        cursor.execute(f"PRAGMA {pragma}")
        return list(cursor.fetchall())
    finally:
        cursor.close()


def _configure(connection: Connection) -> None:
    sqlite = connection.dialect.name == "sqlite"
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=sqlite,
        compare_type=True,
    )
    if sqlite:
        # A batch migration on SQLite copies a table and drops the old one; with foreign keys on,
        # that drop deletes every row referencing it (ON DELETE CASCADE: a session's events).
        _sqlite_pragma(connection, "foreign_keys=OFF")
    try:
        with context.begin_transaction():
            if connection.dialect.name == "postgresql":
                # Several processes (API replicas, workers) may start at once: one migrates, the
                # others wait for it and then find nothing to do.
                connection.execute(text("SELECT pg_advisory_xact_lock(7272741)"))
            context.run_migrations()
    finally:
        if sqlite:
            _sqlite_pragma(connection, "foreign_keys=ON")
    if sqlite and (broken := _sqlite_pragma(connection, "foreign_key_check")):
        raise RuntimeError(f"the migration left rows whose foreign key points nowhere: {broken[:5]}")


async def _run_async() -> None:
    engine = create_engine(_url())
    async with engine.connect() as connection:
        await connection.run_sync(_configure)
        await connection.commit()
    await engine.dispose()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
    else:
        asyncio.run(_run_async())


if context.is_offline_mode():
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    run_migrations_online()
