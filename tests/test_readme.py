"""The README's first screen and configuration table stay true to the code."""

from __future__ import annotations

from pathlib import Path

from app.config import Settings

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def _settings_table() -> str:
    return README.split("<!-- settings-table -->")[1].split("<!-- /settings-table -->")[0]


def test_every_setting_is_documented() -> None:
    table = _settings_table()
    for name in Settings.model_fields:
        env = f"MAS_{name.upper()}"
        # The mirror row abbreviates its siblings as `…_APT_MIRROR`, `…_GOPROXY`, ...
        short = "`…_" + env.removeprefix("MAS_SANDBOX_") + "`"
        assert env in table or short in table, f"{env} is missing from the README configuration table"


def test_first_screen_gives_the_two_commands() -> None:
    first_screen = "\n".join(README.splitlines()[:25])
    assert "bash scripts/run.sh" in first_screen and "bash scripts/test.sh" in first_screen
    ci = (Path(__file__).resolve().parents[1] / ".ci" / "run").read_text()
    assert "bash scripts/test.sh" in ci
