"""One set of Alembic migrations for both databases: the models and the migrations agree, and the
schema can be taken down and built again."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command

from app.db.migrate import alembic_config
from tests.support.databases import fresh_database


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
