"""Typed FastAPI dependencies: settings, database, and the request's unit of work."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.db.engine import Database
from app.events.notifier import Notifier
from app.storage.blobs import BlobBackend


async def get_settings_dep(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_database(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


async def get_blobs(request: Request) -> BlobBackend:
    blobs: BlobBackend = request.app.state.blobs
    return blobs


async def get_notifier(request: Request) -> Notifier:
    notifier: Notifier = request.app.state.notifier
    return notifier


async def get_uow(db: Annotated[Database, Depends(get_database)]) -> AsyncIterator[AsyncSession]:
    """The request owns the transaction: committed when the endpoint returns, rolled back on error."""
    async with db.unit_of_work() as session:
        yield session


async def get_read(db: Annotated[Database, Depends(get_database)]) -> AsyncIterator[AsyncSession]:
    """A read-only session for GET endpoints (no write lock on SQLite)."""
    async with db.read() as session:
        yield session


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
DatabaseDep = Annotated[Database, Depends(get_database)]
BlobsDep = Annotated[BlobBackend, Depends(get_blobs)]
NotifierDep = Annotated[Notifier, Depends(get_notifier)]
# scope="function": commit before the response is sent, so a failed commit is the response.
WriteSession = Annotated[AsyncSession, Depends(get_uow, scope="function")]
ReadSession = Annotated[AsyncSession, Depends(get_read, scope="function")]
