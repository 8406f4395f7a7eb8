"""`/ready` answers 200 only when this process can do its work, and otherwise names what is wrong;
`/health` (liveness) stays 200 whatever the dependencies do."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app.shared.loops import LoopService
from tests.conftest import make_settings
from tests.support import databases
from tests.support.server import ServerThread

# The loop services of a test server that /ready reports (the dream runner is off on test servers;
# the sandbox idle stop starts with the first sandbox, and is fine until then).
SERVICES = {
    "storage-sweeper": "ok",
    "webhook-dispatcher": "ok",
    "deployment-scheduler": "ok",
    "mcp-reaper": "ok",
    "sandbox-idle-stop": "ok",
}
POSTGRES_CHECKS = {"database": "ok", "listener": "ok", "worker": "ok", "pg-notify-sender": "ok"}


@pytest.fixture
def postgres_url(tmp_path: Path) -> Iterator[str]:
    yield from databases.fresh_database("postgres", tmp_path)


def _ready(server: ServerThread) -> tuple[int, dict[str, object]]:
    answer = httpx.get(server.url + "/ready", timeout=60)
    return answer.status_code, answer.json()


@pytest.mark.postgres
def test_ready_fails_and_names_the_database_when_it_is_gone(postgres_url: str) -> None:
    server = ServerThread(make_settings(postgres_url)).start()
    try:
        status, body = _ready(server)
        assert (status, body) == (
            200,
            {"status": "ready", "checks": {**POSTGRES_CHECKS, **SERVICES}, "failed": []},
        )
        admin = databases.postgres_admin_url()
        assert admin is not None
        databases.drop_postgres_database(admin, postgres_url)

        status, body = _ready(server)
        assert status == 503 and body["status"] == "not_ready"
        checks = body["checks"]
        assert isinstance(checks, dict)
        assert "does not exist" in checks["database"]
        assert checks["listener"].startswith("disconnected from PostgreSQL")
        assert checks["worker"] == "ok"
        assert body["failed"] == ["database", "listener"]  # the loop services go on (their rounds fail)
        # Liveness is not readiness: the process itself still answers.
        assert httpx.get(server.url + "/health", timeout=60).status_code == 200
    finally:
        server.stop()


def test_ready_names_a_database_that_is_not_migrated(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}"
    server = ServerThread(make_settings(url, embedded_worker=False)).start()
    try:
        status, body = _ready(server)
        assert status == 503
        assert body["checks"] == {
            "database": "not migrated: it has no schema yet (run `mas migrate`)",
            "storage-sweeper": "ok",
            "webhook-dispatcher": "ok",
            "deployment-scheduler": "ok",
        }
        assert body["failed"] == ["database"]
    finally:
        server.stop()


def test_ready_on_sqlite_checks_the_database_and_the_worker(tmp_path: Path) -> None:
    url = databases.create_sqlite_database(tmp_path)
    server = ServerThread(make_settings(url)).start()
    try:
        assert _ready(server) == (
            200,
            {"status": "ready", "checks": {"database": "ok", "worker": "ok", **SERVICES}, "failed": []},
        )
    finally:
        server.stop()


class Crash(BaseException):
    """What no round of a loop service catches: its loop ends."""


def test_ready_fails_and_names_each_loop_service_that_stopped_or_crashed(tmp_path: Path) -> None:
    url = databases.create_sqlite_database(tmp_path)
    server = ServerThread(make_settings(url)).start()
    try:
        services: dict[str, LoopService] = server.app.state.services
        dispatcher = services["webhook-dispatcher"]

        async def crash() -> None:
            raise Crash("a bug")

        async def crash_the_dispatcher() -> None:
            dispatcher.run_once = crash  # type: ignore[method-assign]
            dispatcher.wake()
            (loop,) = [task for task in asyncio.all_tasks() if task.get_name() == dispatcher.name]
            await asyncio.wait([loop])

        server.run(crash_the_dispatcher())
        server.run(services["deployment-scheduler"].stop())
        status, body = _ready(server)
        assert status == 503
        checks = body["checks"]
        assert isinstance(checks, dict)
        assert checks["webhook-dispatcher"] == "its loop ended (Crash('a bug'))"
        assert checks["deployment-scheduler"] == "stopped"
        assert body["failed"] == ["webhook-dispatcher", "deployment-scheduler"]
        assert httpx.get(server.url + "/health", timeout=60).json() == {"status": "ok", "sandbox": "ok"}
    finally:
        server.stop()


def test_a_database_behind_this_build_is_named_with_both_revisions(tmp_path: Path) -> None:
    url = databases.create_sqlite_database(tmp_path)
    asyncio.run(_set_revision(url, "0001_older"))
    server = ServerThread(make_settings(url, embedded_worker=False)).start()
    try:
        status, body = _ready(server)
        assert status == 503
        checks = body["checks"]
        assert isinstance(checks, dict)
        assert checks["database"].startswith("not migrated: at 0001_older, this build needs ")
    finally:
        server.stop()


async def _set_revision(url: str, revision: str) -> None:
    import sqlalchemy as sa

    from app.db.engine import Database

    db = Database(url)
    try:
        async with db.unit_of_work() as session:
            await session.execute(sa.text("UPDATE alembic_version SET version_num = :r"), {"r": revision})
    finally:
        await db.dispose()
