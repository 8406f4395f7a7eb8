"""`mas --version` and `mas doctor`: the doctor names each problem and what to do, and exits 1
while any remains."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.server import ROOT


def mas(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app", *args],
        env={**os.environ, **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_version() -> None:
    done = mas("--version")
    assert done.returncode == 0 and done.stdout.startswith("mas 0.")


def test_doctor_names_a_missing_database_and_then_finds_nothing_wrong(tmp_path: Path) -> None:
    env = {
        "MAS_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'mas.db'}",
        "MAS_SANDBOX_BACKEND": "local",
        "MAS_STORAGE_DIR": str(tmp_path / "storage"),
        "MAS_SANDBOX_STATE_DIR": str(tmp_path / "sandbox"),
    }
    first = mas("doctor", **env)
    assert first.returncode == 1
    assert f"FAIL  database: {tmp_path / 'mas.db'} does not exist yet" in first.stdout
    assert "-> run `mas migrate`" in first.stdout
    assert not (tmp_path / "mas.db").exists()  # the doctor creates nothing

    assert mas("migrate", **env).returncode == 0
    second = mas("doctor", **env)
    assert second.returncode == 0, second.stdout
    assert "ok    database" in second.stdout and second.stdout.strip().endswith("all good")


@pytest.mark.docker
def test_doctor_names_a_sandbox_image_that_is_not_built(tmp_path: Path) -> None:
    env = {
        "MAS_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'mas.db'}",
        "MAS_SANDBOX_BACKEND": "docker",
        "MAS_SANDBOX_BASE_IMAGE": "mas-doctor-test-missing:never",
        "MAS_STORAGE_DIR": str(tmp_path / "storage"),
        "MAS_SANDBOX_STATE_DIR": str(tmp_path / "sandbox"),
    }
    assert mas("migrate", **env).returncode == 0
    done = mas("doctor", **env)
    assert done.returncode == 1
    assert "ok    docker" in done.stdout
    missing = "mas-doctor-test-missing:never"
    assert f"FAIL  image {missing}: {missing} is not built" in done.stdout
    assert "-> run `mas sandbox base`" in done.stdout
    assert done.stdout.strip().endswith("1 problem(s)")
