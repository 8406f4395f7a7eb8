"""Test databases: a fresh SQLite file or a fresh PostgreSQL database per test run, built by Alembic."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from app.db import migrate

POSTGRES_ENV = "MAS_TEST_POSTGRES_URL"


def postgres_admin_url() -> str | None:
    return os.environ.get(POSTGRES_ENV) or None


def _asyncpg_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def _admin(url: str, sql: str) -> None:
    conn = await asyncpg.connect(_asyncpg_dsn(url))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def create_postgres_database(admin_url: str) -> str:
    name = f"mas_test_{uuid.uuid4().hex[:12]}"
    asyncio.run(_admin(admin_url, f'CREATE DATABASE "{name}"'))
    url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    migrate.upgrade(url)
    return url


def drop_postgres_database(admin_url: str, url: str) -> None:
    name = make_url(url).database
    asyncio.run(_admin(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def create_sqlite_database(directory: Path) -> str:
    url = f"sqlite+aiosqlite:///{directory / 'mas.db'}"
    migrate.upgrade(url)
    return url


def fresh_database(backend: str, directory: Path) -> Iterator[str]:
    """A new, migrated database of `backend` (dropped afterwards on PostgreSQL). With CI=true a
    missing PostgreSQL fails the test instead of skipping it."""
    if backend == "sqlite":
        yield create_sqlite_database(directory)
        return
    admin = postgres_admin_url()
    if admin is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("CI=true but MAS_TEST_POSTGRES_URL is not set")
        pytest.skip("PostgreSQL not configured (set MAS_TEST_POSTGRES_URL or use the README test command)")
    url = create_postgres_database(admin)
    try:
        yield url
    finally:
        drop_postgres_database(admin, url)
