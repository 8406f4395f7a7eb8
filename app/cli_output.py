"""How the `mas` commands print: readable lines for people, `--json` for scripts, and progress
bars (rich) only when a person is watching (stdout is a terminal)."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Annotated, Protocol, TypeVar

import typer
from pydantic_core import to_jsonable_python

Json = Annotated[
    bool, typer.Option("--json", help="Print a JSON array of objects (one per item) instead of text.")
]


T = TypeVar("T")


def emit(items: Iterable[T], as_json: bool, line: Callable[[T], str]) -> None:
    """Print a listing: one readable line per item, or the items (dicts or pydantic models) as
    one JSON array."""
    if as_json:
        typer.echo(json.dumps(to_jsonable_python(list(items)), indent=2, default=str))
        return
    for item in items:
        typer.echo(line(item))


def interactive() -> bool:
    """Is a person watching? Progress bars and colour only then: pipes and CI get plain lines."""
    return sys.stdout.isatty()


class Advance(Protocol):
    def __call__(self, done: int, total: int | None, what: str) -> None: ...


@contextmanager
def progress(label: str) -> Iterator[Advance]:
    """A rich progress bar on a terminal; elsewhere a plain line per step that says something new."""
    if not interactive():
        last = [""]

        def plain(done: int, total: int | None, what: str) -> None:
            if what != last[0]:
                last[0] = what
                typer.echo(f"{label}: {done}/{total if total is not None else '?'} {what}")

        yield plain
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, TextColumn("{task.fields[what]}"), transient=False) as bar:
        task = bar.add_task(label, total=None, what="")

        def update(done: int, total: int | None, what: str) -> None:
            bar.update(task, completed=done, total=total, what=what[:60])

        yield update
