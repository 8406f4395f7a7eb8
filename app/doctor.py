"""`mas doctor`: is this machine ready to run mas, and if not, what to do about it.

Each finding is a check, its problem (None: fine) and the advice that fixes it. Read-only: the
doctor creates nothing (no database file, no network, no image).
"""

from __future__ import annotations

import asyncio
import shutil
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url

from app.config import Settings
from app.db import migrate
from app.db.engine import Database, is_sqlite
from app.observability.readiness import describe

LOW_DISK_BYTES = 2 * 1024**3


@dataclass(frozen=True)
class Finding:
    check: str
    problem: str | None
    advice: str

    @property
    def ok(self) -> bool:
        return self.problem is None


def database(settings: Settings) -> Finding:
    advice = "run `mas migrate` (or check MAS_DATABASE_URL)"
    url = settings.database_url
    if is_sqlite(url):
        path = make_url(url).database
        if path and path != ":memory:" and not Path(path).expanduser().exists():
            return Finding("database", f"{path} does not exist yet", "run `mas migrate` (or `mas serve`)")

    async def check() -> str | None:
        db = Database(url, 1)
        try:
            return await asyncio.wait_for(migrate.schema_problem(db), 30)
        except Exception as exc:
            return describe(exc)
        finally:
            await db.dispose()

    return Finding("database", asyncio.run(check()), advice)


def disk(settings: Settings) -> list[Finding]:
    """Free space where mas writes: storage, sandbox state, and the SQLite file."""
    places = {"storage": settings.storage_dir, "sandbox state": settings.sandbox_state_dir}
    sqlite_file = make_url(settings.database_url).database if is_sqlite(settings.database_url) else None
    if sqlite_file and sqlite_file != ":memory:":
        places["database"] = Path(sqlite_file)
    findings = []
    for name, place in places.items():
        existing = Path(place).expanduser().resolve()
        while not existing.exists():
            existing = existing.parent
        free = shutil.disk_usage(existing).free
        problem = None if free >= LOW_DISK_BYTES else f"{free / 1024**3:.1f} GiB free at {existing}"
        findings.append(Finding(f"disk ({name})", problem, "free space, or point the setting elsewhere"))
    return findings


def sandbox(settings: Settings) -> list[Finding]:
    if settings.sandbox_backend != "docker":
        return [Finding("sandbox", None, "")]
    from app.sandbox.commands import engine_findings

    return [Finding(check, problem, advice) for check, problem, advice in engine_findings(settings)]


def examine(settings: Settings) -> list[Finding]:
    return [database(settings), *sandbox(settings), *disk(settings)]
