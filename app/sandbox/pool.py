"""A warm pool: started, idle sandboxes per image, ready to become a new session's.

Starting a container costs a few hundred milliseconds; a session should not wait for it. For
unrestricted networking nothing in a sandbox is session-specific, so the backend keeps
`MAS_SANDBOX_WARM_POOL` started containers per image in use. A session adopts one: the container
is renamed to the session's name and the session's state directory points (symlink) at the pool
directory the container has mounted. Identity after adoption is the container *name* (labels are
immutable in Docker), which is why the backend finds sessions by name.

Limited networking needs a per-session proxy and is never pooled.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable

from app.shared.loops import LoopService

log = logging.getLogger(__name__)

POOL_PREFIX = "pool-"

StartPooled = Callable[[str, str], Awaitable[None]]
RemovePooled = Callable[[str], Awaitable[None]]


def is_pool_key(key: str) -> bool:
    return key.startswith(POOL_PREFIX)


class WarmPool(LoopService):
    """A loop service with no interval: `refill` wakes it, and each round tops up every image
    asked for since the last one, all at once. An image whose container would not start is left
    as it is until the next `refill` (sessions fall back to a cold start meanwhile)."""

    on_demand = True  # started by the first `refill`

    def __init__(self, size: int, start: StartPooled, remove: RemovePooled) -> None:
        super().__init__("sandbox-warm-pool", None, enabled=size > 0)
        self.size = size
        self._start = start  # (pool key, image): create, start and wait for the tool server
        self._remove = remove
        self._ready: dict[str, list[str]] = {}
        self._wanted: set[str] = set()

    def take(self, image: str) -> str | None:
        ready = self._ready.get(image)
        return ready.pop() if ready else None

    async def refill(self, image: str) -> None:
        if self.size <= 0:
            return
        self._wanted.add(image)
        await self.start()
        self.wake()

    async def run_once(self) -> float | None:
        images, self._wanted = self._wanted, set()
        await asyncio.gather(*(self._fill(image) for image in images))
        return None

    async def _fill(self, image: str) -> None:
        ready = self._ready.setdefault(image, [])
        while len(ready) < self.size:
            # Start the whole deficit at once: a burst of sessions drains the pool faster than
            # one container at a time would refill it.
            missing = self.size - len(ready)
            started = await asyncio.gather(*(self._start_one(image) for _ in range(missing)))
            ready.extend(key for key in started if key is not None)
            if None in started:
                return

    async def _start_one(self, image: str) -> str | None:
        key = f"{POOL_PREFIX}{uuid.uuid4().hex[:12]}"
        try:
            await self._start(key, image)
        except Exception:  # the pool is an optimisation: sessions fall back to a cold start
            log.warning("could not warm a sandbox of %s", image, exc_info=True)
            with contextlib.suppress(Exception):
                await self._remove(key)
            return None
        return key

    def keys(self) -> set[str]:
        return {key for keys in self._ready.values() for key in keys}

    def ready(self, image: str) -> int:
        return len(self._ready.get(image, ()))

    async def on_stop(self) -> None:
        """After the last round: remove the containers no session adopted."""
        for keys in self._ready.values():
            for key in keys:
                with contextlib.suppress(Exception):
                    await self._remove(key)
        self._ready.clear()
