"""Apply Alembic migrations programmatically (used by `mas serve`, `mas migrate` and the tests)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config

import migrations

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
