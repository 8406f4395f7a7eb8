"""Session outputs: what the agent writes under /mnt/session/outputs becomes session-scoped files.

Collected after each tool step (tools are the only writers), so a turn's outputs are listed by
``files.list(scope_id=<session>)`` before its ``session.status_idle``. Only files whose size or
modification time changed since the last look are read, so the work follows what is new. One file
per output path: rewriting an output gives the same file id new content.

What one session keeps is capped by ``MAS_FILES_OUTPUTS_MAX_BYTES`` in total (its sandbox disk
quota bounds what the agent can write, but with ``MAS_SANDBOX_DISK_MB=0`` nothing else would):
an output that would take the session past it is not kept, and is looked at again once older
outputs shrink or go.
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
    changed = [output for output in listed if seen.get(output.path) != (output.size, output.mtime_ns)]
    if not changed:
        return 0
    limit = deps.settings.files_max_bytes
    budget = deps.settings.files_outputs_max_bytes
    async with deps.database.read() as db:
        kept = await files.output_sizes(db, session_id)
    stored = 0
    for output in changed:
        stamp = (output.size, output.mtime_ns)
        if output.size > limit:
            seen[output.path] = stamp
            log.warning("session %s: output %s is over %d bytes; not kept", session_id, output.path, limit)
            continue
        others = sum(kept.values()) - kept.get(output.path, 0)
        if others + output.size > budget:  # not marked seen: tried again when room is made
            log.warning(
                "session %s: output %s (%d bytes) would take the session's outputs past %d bytes; not kept",
                session_id,
                output.path,
                output.size,
                budget,
            )
            continue
        seen[output.path] = stamp
        try:
            staged = await _stage(deps, session_id, output, min(limit, budget - others))
        except OSError as error:  # replaced by a link or removed meanwhile
            log.info("session %s: output %s skipped: %s", session_id, output.path, error)
            continue
        if staged is None:  # grew past a limit while being read
            seen.pop(output.path, None)
            continue
        async with deps.database.unit_of_work() as db:
            if await files.record_output(db, deps.blobs, staged, session_id=session_id, path=output.path):
                stored += 1
        kept[output.path] = staged.size
    return stored
