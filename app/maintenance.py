"""`mas sandbox prune`: ask the database what sessions and environments still need, then let the
sandbox layer remove the rest of this instance's containers and environment images."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from dataclasses import dataclass, field

from app.agent_loop.memory import MemoryMounter
from app.config import Settings
from app.db.engine import Database
from app.environments import service as environments
from app.sandbox.prune import Prunable, Pruner
from app.sessions import service as sessions


@dataclass
class PruneResult:
    planned: list[Prunable]
    failed: dict[str, str] = field(default_factory=dict)  # item id -> why it stayed

    @property
    def removed(self) -> list[Prunable]:
        return [item for item in self.planned if item.id not in self.failed]


async def _needs(settings: Settings) -> tuple[list[dict[str, list[str]]], set[str]]:
    db = Database(settings.database_url, 1)
    try:
        async with db.read() as session:
            live = await sessions.sandbox_needs(session)
            specs = await environments.needed_packages(session, set(live.values()))
        return specs, set(live)
    finally:
        await db.dispose()


def prune(
    settings: Settings, *, dry_run: bool, on_item: Callable[[int, int, str], None] | None = None
) -> PruneResult:
    """Plan, and unless `dry_run` remove, one item at a time (`on_item(done, total, name)`)."""
    from app.sandbox.docker_backend import DockerBackend

    async def run() -> PruneResult:
        specs, live = await _needs(settings)
        backend = DockerBackend(settings)
        # A pruned session's memory mounts are synced a last time before its files go (a write
        # its container made after the last sync, e.g. before it died, is not lost).
        database = Database(settings.database_url, 1)
        backend.on_stopped(functools.partial(MemoryMounter(database).flush, backend))
        try:
            pruner = Pruner(backend)
            result = PruneResult(await pruner.plan(specs, live))
            if dry_run:
                return result
            for done, item in enumerate(result.planned):
                if on_item is not None:
                    on_item(done, len(result.planned), f"{item.kind} {item.name}")
                if (why := await pruner.remove(item)) is not None:
                    result.failed[item.id] = why
            if on_item is not None:
                on_item(len(result.planned), len(result.planned), "done")
            return result
        finally:
            await backend.close()
            await database.dispose()

    return asyncio.run(run())
