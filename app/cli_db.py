"""Helpers of `mas` commands that work on the database directly (keys, env-keys, webhooks)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

import typer

from app.config import get_settings

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

T = TypeVar("T")


def run_api_call(call: Coroutine[Any, Any, T]) -> T:
    """Run a service call for the CLI: an API error is a message and exit status 1, not a trace."""
    from app.errors import ApiError

    try:
        return asyncio.run(call)
    except ApiError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(1) from None


async def with_database(call: Callable[[AsyncSession], Awaitable[T]], *, write: bool) -> T:
    from app.db.engine import Database

    db = Database(get_settings().database_url)
    try:
        async with db.unit_of_work() if write else db.read() as session:
            return await call(session)
    finally:
        await db.dispose()
