"""Shared fixtures: a real mas server per database backend, and the real SDK as its client.

Backends: `sqlite` always; `postgres` when MAS_TEST_POSTGRES_URL points at a server (the README's
test command starts one). With CI=true a missing PostgreSQL or Docker is an error, not a skip.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import anthropic
import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from app.agent_loop import ledger
from app.config import Settings
from app.db.engine import Database
from tests.support import databases, scratch
from tests.support.clients import (
    API_KEY,
    strict_async_client,
    strict_client,
)
from tests.support.server import ServerThread

IN_CI = os.environ.get("CI", "").lower() == "true"
# Worker-free servers and the in-process turn producer (tests/events, tests/sessions).
pytest_plugins = ["tests.support.fixtures", "tests.support.wire_check", "pytester"]


def pytest_sessionstart(session: pytest.Session) -> None:
    # Once per run: the controller reaps before its xdist workers start (theirs are alive anyway).
    if "PYTEST_XDIST_WORKER" not in os.environ:
        scratch.reap_dead_runs()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Files with a `slow` test run first, so that in several processes (scripts/test.sh) the
    longest files do not start last and hold the run up; the order within a file is kept.
    A `postgres_only` test's SQLite variant is not run at all (rather than skipped: with CI=true
    nothing that needs PostgreSQL may show as skipped)."""
    sqlite_only_variants = [i for i in items if i.get_closest_marker("postgres_only") and "[sqlite" in i.name]
    if sqlite_only_variants:
        config.hook.pytest_deselected(items=sqlite_only_variants)
        items[:] = [i for i in items if i not in sqlite_only_variants]
    slow = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in slow)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    scratch.reap_own()
    if "PYTEST_XDIST_WORKER" not in os.environ:  # the controller ends last: its workers are done
        scratch.unmount_in_pytest_dirs_of(os.getpid())


def _backends() -> list[str]:
    return ["sqlite", "postgres"]


@pytest.fixture(autouse=True)
def no_ledger_mismatch() -> Iterator[None]:
    """Fails a test during which a worker's ledger differed from its session's full log."""
    before = len(ledger.MISMATCHES)
    yield
    found = ledger.MISMATCHES[before:]
    assert not found, "\n".join(found)


@pytest.fixture(scope="session")
def api_key() -> str:
    return API_KEY


def _database_url(backend: str, tmp: Path) -> Iterator[str]:
    yield from databases.fresh_database(backend, tmp)


@pytest.fixture(scope="session", params=_backends())
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session")
def database_url(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from _database_url(backend, tmp_path_factory.mktemp(f"db-{backend}"))


def make_settings(database_url: str, **overrides: object) -> Settings:
    # Each test server owns its sandboxes (label + state dir), so reaping never touches another's.
    instance = f"test-{uuid.uuid4().hex[:10]}"
    state_dir = scratch.make_dir(instance)
    base: dict[str, object] = {
        "sandbox_instance": instance,
        "sandbox_state_dir": state_dir,
        "storage_dir": scratch.make_dir(instance, "storage"),
        # Generated on first start, as for a new user who sets no key.
        "vault_key_file": scratch.make_dir(instance, "keys") / "vault.key",
        "database_url": database_url,
        "api_keys": [API_KEY],
        "auto_migrate": False,
        "model_backend": "offline",
        "anthropic_api_key": None,
        "anthropic_base_url": None,
        "sandbox_backend": "local",
        "port": 0,
        # Dreams stay pending on shared test servers (tests/dreams runs them on servers of its own).
        "dreams_poll_seconds": 0,
        # Every step of every loop also rebuilds its state from the full log and compares.
        "ledger_verify": True,
    }
    base.update(overrides)
    return Settings.model_validate(base)


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    """The test server's database, for tests that call services directly."""
    db = Database(database_url)
    try:
        yield db
    finally:
        await db.dispose()


@pytest.fixture
async def db(database: Database) -> AsyncIterator[AsyncSession]:
    """A read session of the test server's database."""
    async with database.read() as session:
        yield session


@pytest.fixture(scope="session")
def mas_server(database_url: str) -> Iterator[ServerThread]:
    server = ServerThread(make_settings(database_url)).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def client(mas_server: ServerThread) -> Iterator[anthropic.Anthropic]:
    with strict_client(mas_server.url, API_KEY) as sdk:
        yield sdk


@pytest.fixture(scope="session")
async def async_client(mas_server: ServerThread) -> AsyncIterator[anthropic.AsyncAnthropic]:
    async with strict_async_client(mas_server.url, API_KEY) as sdk:
        yield sdk


@pytest.fixture(scope="session")
def http(mas_server: ServerThread) -> Iterator[httpx.Client]:
    headers = {
        "x-api-key": API_KEY,
        "anthropic-version": "2023-06-01",
        "anthropic-beta": "managed-agents-2026-04-01",
    }
    with httpx.Client(base_url=mas_server.url, headers=headers, timeout=30) as session:
        yield session
