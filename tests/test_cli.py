"""`mas keys list`: readable lines, and `--json` that scripts can parse (never the keys); `mas sandbox
prune` says what it needs."""

from __future__ import annotations

import json
from pathlib import Path

from tests.test_doctor import mas


def test_keys_list_as_text_and_as_json(tmp_path: Path) -> None:
    env = {"MAS_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'mas.db'}"}
    kept_id, kept_secret = mas("keys", "create", "--name", "kept", **env).stdout.strip().split("\t")
    gone_id, gone_secret = mas("keys", "create", "--name", "gone", **env).stdout.strip().split("\t")
    assert mas("keys", "revoke", gone_id, **env).returncode == 0

    done = mas("keys", "list", "--json", **env)
    assert done.returncode == 0, done.stderr
    keys = {k["id"]: k for k in json.loads(done.stdout)}
    assert set(keys) == {kept_id, gone_id}
    assert (keys[kept_id]["name"], keys[kept_id]["state"], keys[kept_id]["revoked_at"]) == (
        "kept",
        "active",
        None,
    )
    assert keys[gone_id]["state"] == "revoked" and keys[gone_id]["revoked_at"]
    assert kept_secret not in done.stdout and gone_secret not in done.stdout

    text = mas("keys", "list", **env).stdout.strip().splitlines()
    assert sorted(line.split("\t")[0] for line in text) == sorted([kept_id, gone_id])
    assert any(line.startswith(gone_id) and line.endswith("\trevoked") for line in text)


def test_prune_needs_the_docker_backend(tmp_path: Path) -> None:
    env = {"MAS_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'mas.db'}", "MAS_SANDBOX_BACKEND": "local"}
    done = mas("sandbox", "prune", "--dry-run", **env)
    assert done.returncode == 1 and "works on the Docker backend" in done.stderr
