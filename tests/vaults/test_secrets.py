"""The vault key: generated once when unset, rotation by putting a new key in front, and sealed
secrets that open only with the right key and only for the credential they belong to."""

from __future__ import annotations

import logging
import stat
import threading
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from app.config import Settings
from app.vaults.secrets import SecretBox, SecretsUnreadable
from app.vaults.urls import normalise_url, url_problem


def _settings(**values: object) -> Settings:
    return Settings.model_validate(values)


def test_a_key_is_generated_once_and_kept(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "data" / "vault.key"

    with caplog.at_level(logging.WARNING, logger="mas.vaults"):
        sealed = SecretBox.from_settings(_settings(vault_key_file=path)).seal("vcrd_1", {"token": "abc"})
    reopened = SecretBox.from_settings(_settings(vault_key_file=path))

    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert reopened.open("vcrd_1", sealed) == {"token": "abc"}
    assert "generated a vault key" in caplog.text and "abc" not in caplog.text
    assert "abc" not in path.read_text()


def test_concurrent_first_starts_agree_on_one_key(tmp_path: Path) -> None:
    path = tmp_path / "vault.key"
    boxes: list[SecretBox] = []
    threads = [
        threading.Thread(target=lambda: boxes.append(SecretBox.from_settings(_settings(vault_key_file=path))))
        for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    sealed = boxes[0].seal("vcrd_1", {"token": "t"})
    assert all(box.open("vcrd_1", sealed) == {"token": "t"} for box in boxes)
    assert list(tmp_path.iterdir()) == [path]


def test_rotation_keeps_old_secrets_readable(tmp_path: Path) -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    sealed_old = SecretBox([old]).seal("vcrd_1", {"token": "before"})

    rotated = SecretBox.from_settings(
        _settings(vault_keys=f"{new},{old}", vault_key_file=tmp_path / "unused")
    )
    sealed_new = rotated.seal("vcrd_1", {"token": "after"})

    assert rotated.open("vcrd_1", sealed_old) == {"token": "before"}
    assert SecretBox([new]).open("vcrd_1", sealed_new) == {"token": "after"}
    with pytest.raises(SecretsUnreadable):
        SecretBox([old]).open("vcrd_1", sealed_new)
    assert not (tmp_path / "unused").exists()


def test_a_sealed_secret_opens_only_for_its_credential() -> None:
    box = SecretBox([Fernet.generate_key()])
    sealed = box.seal("vcrd_1", {"token": "t"})

    with pytest.raises(SecretsUnreadable, match="another credential"):
        box.open("vcrd_2", sealed)
    with pytest.raises(SecretsUnreadable):
        box.open("vcrd_1", sealed[:-4] + "AAAA")


def test_a_malformed_key_is_a_clear_startup_error() -> None:
    with pytest.raises(ValueError, match="MAS_VAULT_KEYS: each key must be 32 url-safe base64"):
        SecretBox(["not-a-key"])


@pytest.mark.parametrize(
    ("url", "normal"),
    [
        ("HTTPS://MCP.Example.COM:443/v1/mcp/", "https://mcp.example.com/v1/mcp"),
        ("http://example.com:80", "http://example.com"),
        ("http://example.com:8080/", "http://example.com:8080"),
        ("https://user:pw@example.com/Path?x=1", "https://example.com/Path?x=1"),
        ("http://[::1]:9000/mcp", "http://[::1]:9000/mcp"),
    ],
)
def test_urls_normalise_as_documented(url: str, normal: str) -> None:
    assert url_problem(url) is None and normalise_url(url) == normal


@pytest.mark.parametrize(
    "url", ["example.com/mcp", "ws://example.com", "https://", "http://x:99999/", "https://a b"]
)
def test_bad_urls_are_named(url: str) -> None:
    assert url_problem(url) is not None
