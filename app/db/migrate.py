"""Apply Alembic migrations programmatically (used by `mas serve`, `mas migrate` and the tests)."""

from __future__ import annotations

import asyncio
import functools
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

import migrations
from app.db.engine import Database

# The top-level `migrations` package ships with mas (an installed mas finds its scripts too).
MIGRATIONS_DIR = Path(migrations.__file__).resolve().parent


def alembic_config(database_url: str, storage_dir: Path | None = None) -> Config:
    """``storage_dir``: the content store's directory (migrations that move content use it;
    without it they use the ``MAS_STORAGE_DIR`` setting)."""
    config = Config(str(MIGRATIONS_DIR / "alembic.ini"))
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["database_url"] = database_url
    config.attributes["configure_logging"] = False
    if storage_dir is not None:
        config.attributes["storage_dir"] = storage_dir
    return config


def upgrade(database_url: str, storage_dir: Path | None = None) -> None:
    command.upgrade(alembic_config(database_url, storage_dir), "head")


async def upgrade_async(database_url: str, storage_dir: Path | None = None) -> None:
    # Alembic's env.py runs its own event loop; keep it off ours.
    await asyncio.to_thread(upgrade, database_url, storage_dir)


@functools.cache
def head_revisions() -> frozenset[str]:
    """The revisions a database of this build is at once fully migrated."""
    return frozenset(ScriptDirectory.from_config(alembic_config("")).get_heads())


async def schema_problem(db: Database) -> str | None:
    """Why ``db`` cannot serve this build (unreachable, or not at this build's revision), or None."""
    heads = await asyncio.to_thread(head_revisions)
    async with db.read() as session:
        await session.execute(text("SELECT 1"))  # unreachable: raises, and the probe names it
        try:
            rows = await session.execute(text("SELECT version_num FROM alembic_version"))
        except DBAPIError:
            return "not migrated: it has no schema yet (run `mas migrate`)"
        current = frozenset(rows.scalars())
    if current != heads:
        at = ", ".join(sorted(current)) or "no revision"
        return f"not migrated: at {at}, this build needs {', '.join(sorted(heads))} (run `mas migrate`)"
    return None
