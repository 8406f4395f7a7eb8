"""The SQL statements a database runs while a block does (SQLAlchemy's `before_cursor_execute`),
on both of its engines (writes and reads), kept when ``keep(statement, parameters)`` says so."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event

from app.db.engine import Database


@contextmanager
def recorded_statements(database: Database, keep: Callable[[str, Any], bool]) -> Iterator[list[str]]:
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_args: Any) -> None:
        if keep(statement, parameters):
            seen.append(statement)

    engines = {database.engine.sync_engine, database.read_engine.sync_engine}
    for engine in engines:
        event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        for engine in engines:
            event.remove(engine, "before_cursor_execute", record)
