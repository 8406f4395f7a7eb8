"""The import rules of the house, checked on the source: the event log is below sessions (never
the other way round), and `api/` is a toolkit below the endpoints (the /v1 router is assembled in
`main.py`), so no package both serves and imports the resource packages."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

APP = Path(__file__).resolve().parents[1] / "app"
RESOURCES = ("agents", "environments", "sessions", "skills", "files", "memory_stores", "dreams", "catalog")


def imports_of(package: str) -> dict[str, set[str]]:
    """Every `app.*` module each file of `package` imports (absolute imports only, as the code uses)."""
    found: dict[str, set[str]] = {}
    for path in sorted((APP / package).rglob("*.py")):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module)
                names.update(f"{node.module}.{alias.name}" for alias in node.names)
            elif isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
        found[str(path.relative_to(APP))] = {n for n in names if n.startswith("app.")}
    return found


def offenders(package: str, forbidden: tuple[str, ...]) -> list[str]:
    return sorted(
        f"{file} imports {name}"
        for file, names in imports_of(package).items()
        for name in names
        if any(name == f"app.{f}" or name.startswith(f"app.{f}.") for f in forbidden)
    )


def test_the_event_log_does_not_import_sessions() -> None:
    assert offenders("events", ("sessions",)) == []


@pytest.mark.parametrize("package", ["api", "events", "db", "shared", "offline"])
def test_lower_layers_import_no_resource_package(package: str) -> None:
    # The work-queue credential scopes find a session through the loader the app hands them.
    assert offenders(package, RESOURCES) == []


def test_the_checker_sees_imports() -> None:
    # The session transitions write status events: sessions -> events is the allowed direction.
    assert offenders("sessions", ("events",)) != []


def row_writes(package: str) -> list[str]:
    """Assignments to an attribute of something called ``row`` (a session row) in ``package``."""
    writes = []
    for path in sorted((APP / package).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            targets = node.targets if isinstance(node, ast.Assign) else []
            if isinstance(node, ast.AugAssign | ast.AnnAssign):
                targets = [node.target]
            for target in targets:
                if isinstance(target, ast.Attribute) and ast.unparse(target.value).split(".")[-1] == "row":
                    line = getattr(node, "lineno", 0)
                    writes.append(f"{path.relative_to(APP)}:{line} {ast.unparse(target)}")
    return writes


@pytest.mark.parametrize("package", ["agent_loop", "worker"])
def test_only_sessions_changes_the_session_row(package: str) -> None:
    assert row_writes(package) == []
    assert row_writes("sessions") != []  # where the transitions are
