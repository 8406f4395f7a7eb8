"""Session outputs: what the agent writes under /mnt/session/outputs becomes session-scoped files.

Collected after each tool step (tools are the only writers), so a turn's outputs are listed by
``files.list(scope_id=<session>)`` before its ``session.status_idle``. Only files whose size or
modification time changed since the last look are read, so the work follows what is new. One file
per output path: rewriting an output gives the same file id new content.
"""

from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from app.files import service as files
from app.sandbox.outputs import OutputFile
from app.storage.blobs import Staged

if TYPE_CHECKING:
    from app.agent_loop.deps import LoopDeps

log = logging.getLogger(__name__)

MAX_OUTPUTS = 1000
_CHUNK = 4 * 1024 * 1024


@dataclass
class OutputIndex:
    """Per session, what this process last collected: path -> (size, mtime_ns). A session this
    process has not seen is compared by content once (the files already stored stay as they are)."""

    seen: dict[str, dict[str, tuple[int, int]]] = field(default_factory=dict)

    def forget(self, session_id: str) -> None:
        self.seen.pop(session_id, None)


async def _stage(deps: LoopDeps, session_id: str, output: OutputFile, limit: int) -> Staged | None:
    handle = await asyncio.to_thread(deps.sandbox.open_output, session_id, output.path)
    staging = deps.blobs.stage()
    try:
        while data := await asyncio.to_thread(os.read, handle, _CHUNK):
            await staging.write(data)
            if staging.size > limit:
                await staging.discard()
                return None
        return await staging.finish()
    except BaseException:
        await staging.discard()
        raise
    finally:
        os.close(handle)


async def collect(deps: LoopDeps, index: OutputIndex, session_id: str) -> int:
    """Store new and changed outputs of a session; how many were stored."""
    listed = await deps.sandbox.list_outputs(session_id, MAX_OUTPUTS)
    seen = index.seen.setdefault(session_id, {})
    limit = deps.settings.files_max_bytes
    stored = 0
    for output in listed:
        stamp = (output.size, output.mtime_ns)
        if seen.get(output.path) == stamp:
            continue
        seen[output.path] = stamp
        if output.size > limit:
            log.warning("session %s: output %s is over %d bytes; not kept", session_id, output.path, limit)
            continue
        try:
            staged = await _stage(deps, session_id, output, limit)
        except OSError as error:  # replaced by a link or removed meanwhile
            log.info("session %s: output %s skipped: %s", session_id, output.path, error)
            continue
        if staged is None:
            continue
        async with deps.database.unit_of_work() as db:
            if await files.record_output(db, deps.blobs, staged, session_id=session_id, path=output.path):
                stored += 1
    return stored
