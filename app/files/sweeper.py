"""A loop service: expired files give back their bytes, and content nobody
references any more is removed from the blob backend (``MAS_STORAGE_SWEEP_SECONDS``). Every
``ORPHAN_SCAN_SECONDS`` (and at the first sweep) the backend itself is walked too, for content no
row counts (an upload whose transaction rolled back after placing its bytes) and staged content
never placed, older than ``storage.ORPHAN_GRACE_SECONDS``."""

from __future__ import annotations

import logging
import time

from app.db.engine import Database
from app.files import service
from app.shared.loops import LoopService
from app.storage import service as storage
from app.storage.blobs import BlobBackend

log = logging.getLogger(__name__)

ORPHAN_SCAN_SECONDS = 600.0


class StorageSweeper(LoopService):
    wait_first = True  # nothing to sweep at start that the first interval would not find

    def __init__(self, database: Database, blobs: BlobBackend, interval_seconds: float) -> None:
        super().__init__("storage-sweeper", interval_seconds, enabled=interval_seconds > 0)
        self.database = database
        self.blobs = blobs
        self._orphans_scanned: float | None = None

    async def run_once(self) -> float | None:
        removed = await self.sweep_once()
        if removed:
            log.info("removed %d unreferenced blobs", removed)
        return None

    async def sweep_once(self, *, orphans: bool | None = None) -> int:
        """One sweep; ``orphans`` forces (or skips) the walk of the backend, by default it runs
        when ``ORPHAN_SCAN_SECONDS`` have passed since the last one."""
        now = time.monotonic()
        if orphans is None:
            orphans = self._orphans_scanned is None or now - self._orphans_scanned >= ORPHAN_SCAN_SECONDS
        await service.expire(self.database)
        if orphans:
            self._orphans_scanned = now
            adopted = await storage.sweep_orphans(self.database, self.blobs)
            if adopted:
                log.info("found %d stored blobs no file references", adopted)
        return await storage.sweep(self.database, self.blobs)
