"""Repository tokens at rest: sealed per resource, opened only for that resource, one key file
shared by every process that starts on the same storage directory."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from app.sessions.token_box import FernetBox, TokenUnreadable


def test_sealed_tokens_open_only_for_their_resource(tmp_path: Path) -> None:
    key = tmp_path / "keys" / "repository-tokens.key"
    box = FernetBox.from_file(key)
    sealed = box.seal("sesrsc_a", {"authorization_token": "ghp_secret"})
    assert "ghp_secret" not in sealed
    assert FernetBox.from_file(key).open("sesrsc_a", sealed) == {"authorization_token": "ghp_secret"}
    with pytest.raises(TokenUnreadable):
        box.open("sesrsc_b", sealed)
    with pytest.raises(TokenUnreadable):
        FernetBox.from_file(tmp_path / "other.key").open("sesrsc_a", sealed)
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
