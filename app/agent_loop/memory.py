"""A session's memory stores: placed under /mnt/memory/<slug>/, the agent's writes synced back.

Each store's memories are written into its mount directory before the first tool runs (the
provisioner starts this as soon as the session exists). What the agent changes there is synced
back before and after every tool step: a changed or new file becomes a memory version
attributed to the session, a removed file deletes its memory. A write based on content someone
else changed meanwhile is kept as a conflict version (``app/memory_stores/sync``); the file then
shows the store's current content and the agent is told, so nothing is lost and nothing is
overwritten unseen. Files a memory cannot hold (over 100 kB, not UTF-8 text, a bad path) are
reported to the agent and left alone until changed again.

What was synced is remembered per store in a small manifest next to the mount directory (not
visible in the sandbox), so a restarted worker reads only files changed since. The mount itself
(store id, access) is recorded there too, so a sandbox that stops (idle stop, or the session's
deletion, even after its row is gone) is synced a last time once its processes are gone
(``flush``): a write made outside a tool call, e.g. by a background process, is never lost.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from app.db.engine import Database
from app.errors import ApiError
from app.events.types import EventRecord
from app.memory_stores import memories, sync
from app.memory_stores.paths import MOUNT_ROOT
from app.memory_stores.sync import SessionWrite, SyncOutcome
from app.sandbox import memory_mounts as fs
from app.sandbox.interface import MemoryMount, SandboxBackend
from app.sandbox.memory_mounts import Synced
from app.sessions.resource_schemas import MemoryStoreResource

log = logging.getLogger(__name__)

MAX_FILES = memories.MAX_MEMORIES + 100
MEMORY_INTRO = (
    f"Memory stores are mounted under {MOUNT_ROOT}/: each is a directory of text files that "
    "persists across sessions (one file is one memory: UTF-8 text, at most 100 kB). Check the "
    "relevant store before you start a task. In a read_write store, create, edit or delete files "
    "with the usual file tools to record what should be remembered; each change is saved to the "
    "store when the tool call ends. A read_only store cannot be changed."
)


def sandbox_mounts(mounted: Sequence[MemoryStoreResource]) -> tuple[MemoryMount, ...]:
    return tuple(MemoryMount(m.slug, m.access == "read_only") for m in mounted)


def prompt_section(mounted: Sequence[MemoryStoreResource]) -> str | None:
    """The system prompt's memory section: each mount's name, path, access, description and
    instructions (None without memory stores)."""
    if not mounted:
        return None
    lines = [MEMORY_INTRO, ""]
    for m in mounted:
        about = f": {m.description}" if m.description else ""
        lines.append(f"- {m.name} at {m.mount_path}/ ({m.access}){about}")
        if m.instructions:
            lines.append(f"  Instructions: {m.instructions}")
    return "\n".join(lines)


@dataclass
class _Manifest:
    """Per store: path -> the store content the session's copy is based on (``sha256`` None:
    not in the store) with the size and mtime the file had when last looked at."""

    files: dict[str, Synced] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> _Manifest | None:
        try:
            raw = json.loads(path.read_text())
        except FileNotFoundError:
            return None
        return cls({p: Synced(**v) for p, v in raw.items()})

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps({p: asdict(v) for p, v in self.files.items()}))
        os.replace(temporary, path)


def _sync_dir(sandbox: SandboxBackend, session_id: str) -> Path:
    return sandbox.memory_dir(session_id).parent / "memory-sync"


def _manifest_path(sandbox: SandboxBackend, session_id: str, slug: str) -> Path:
    return _sync_dir(sandbox, session_id) / f"{slug}.json"


def _save_mount(directory: Path, mount: MemoryStoreResource) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{mount.slug}.mount").write_text(mount.model_dump_json())


def _load_mounts(directory: Path) -> list[MemoryStoreResource]:
    if not directory.is_dir():
        return []
    found = []
    for path in sorted(directory.glob("*.mount")):
        try:
            found.append(MemoryStoreResource.model_validate_json(path.read_text()))
        except (OSError, ValueError):
            log.warning("unreadable memory mount record %s", path)
    return found


def _writes(scan: fs.Scan, known: dict[str, Synced], notes: list[str], mount: str) -> list[SessionWrite]:
    writes = []
    for change in scan.changed:
        base = known[change.path].sha256 if change.path in known else None
        problem = None
        try:
            content = change.data.decode("utf-8") if change.data is not None else None
        except UnicodeDecodeError:
            content, problem = None, "it is not UTF-8 text"
        if change.data is None:
            problem = f"it is larger than the {memories.MAX_CONTENT_BYTES:,}-byte limit of a memory"
        if problem is not None or content is None:
            notes.append(f"{mount}{change.path} was not saved to the memory store: {problem}")
            known[change.path] = Synced(base, change.size, change.mtime_ns)
            continue
        writes.append(SessionWrite(change.path, content, base))
    writes += [SessionWrite(path, None, known[path].sha256) for path in scan.deleted]
    return writes


@dataclass
class MemoryMounter:
    """Per process: places each (session, store) once and syncs the session's writes back."""

    database: Database
    _placing: dict[tuple[str, str], asyncio.Task[None]] = field(default_factory=dict)
    _locks: dict[str, asyncio.Lock] = field(default_factory=dict)

    async def place(
        self, sandbox: SandboxBackend, session_id: str, mounted: Sequence[MemoryStoreResource]
    ) -> None:
        """Write each store's memories into its mount directory, unless already done."""
        keys = [(session_id, mount.slug) for mount in mounted]
        for key, mount in zip(keys, mounted, strict=True):
            if key not in self._placing:
                self._placing[key] = asyncio.create_task(self._place(sandbox, session_id, mount))
        outcomes = await asyncio.gather(*(self._placing[k] for k in keys), return_exceptions=True)
        failures = [(k, o) for k, o in zip(keys, outcomes, strict=True) if isinstance(o, BaseException)]
        for key, _ in failures:
            self._placing.pop(key, None)  # the next tool step tries again
        if failures:
            raise failures[0][1]

    async def _place(self, sandbox: SandboxBackend, session_id: str, mount: MemoryStoreResource) -> None:
        manifest_path = _manifest_path(sandbox, session_id, mount.slug)
        if await asyncio.to_thread(_Manifest.load, manifest_path) is not None:
            return  # placed by an earlier process: the directory holds the session's own state
        async with self.database.read() as db:
            stored = sync.mounted_memories(db, mount.memory_store_id)
            files = [(m.path, m.content.encode("utf-8")) async for m in stored]
        root = sandbox.memory_dir(session_id) / mount.slug
        placed = await asyncio.to_thread(fs.populate, root, files)
        await asyncio.to_thread(_save_mount, manifest_path.parent, mount)
        await asyncio.to_thread(_Manifest(placed).save, manifest_path)

    async def sync(
        self, sandbox: SandboxBackend, session_id: str, mounted: Sequence[MemoryStoreResource]
    ) -> list[str]:
        """Sync every read_write store's changes back; notes for the agent (conflicts, refusals)."""
        lock = self._locks.setdefault(session_id, asyncio.Lock())
        notes: list[str] = []
        async with lock:
            for mount in mounted:
                if mount.access == "read_write":
                    try:
                        notes += await self._sync(sandbox, session_id, mount)
                    except ApiError as exc:  # e.g. the store was deleted meanwhile
                        notes.append(f"{mount.mount_path}: changes were not saved: {exc.message}")
                    except OSError:
                        log.exception("session %s: syncing %s failed", session_id, mount.mount_path)
        return notes

    async def _sync(self, sandbox: SandboxBackend, session_id: str, mount: MemoryStoreResource) -> list[str]:
        manifest_path = _manifest_path(sandbox, session_id, mount.slug)
        manifest = await asyncio.to_thread(_Manifest.load, manifest_path)
        if manifest is None:
            return []  # not placed yet: nothing the agent wrote can be there
        root = sandbox.memory_dir(session_id) / mount.slug
        scan = await asyncio.to_thread(
            fs.scan, root, manifest.files, max_files=MAX_FILES, max_bytes=memories.MAX_CONTENT_BYTES
        )
        known = dict(manifest.files)
        notes: list[str] = []
        writes = _writes(scan, known, notes, mount.mount_path)
        changed = {c.path: c for c in scan.changed}
        if writes:
            async with self.database.unit_of_work() as db:
                outcomes = await sync.apply_session_writes(db, mount.memory_store_id, session_id, writes)
            for write, outcome in zip(writes, outcomes, strict=True):
                notes += await self._settle(root, mount, write, outcome, changed.get(write.path), known)
        known.update(scan.unchanged)
        await asyncio.to_thread(_Manifest(known).save, manifest_path)
        return notes

    async def _settle(
        self,
        root: Path,
        mount: MemoryStoreResource,
        write: SessionWrite,
        outcome: SyncOutcome,
        change: fs.Changed | None,
        known: dict[str, Synced],
    ) -> list[str]:
        """Record what the store now holds for ``write.path``; the note for the agent, if any."""
        where = f"{mount.mount_path}{write.path}"
        if outcome.status in ("applied", "unchanged"):
            if write.content is None:
                known.pop(write.path, None)
            elif change is not None:
                known[write.path] = Synced(change.sha256, change.size, change.mtime_ns)
            return []
        if outcome.status == "rejected":
            if change is not None:
                known[write.path] = Synced(write.base_sha256, change.size, change.mtime_ns)
            else:
                known.pop(write.path, None)
            return [f"{where} was not saved to the memory store: {outcome.message}"]
        await self._show_current(root, mount, write.path, known)
        return [
            f"{where}: {outcome.message}. The file now holds the store's current content; read it "
            "and write your change again if it still applies."
        ]

    async def _show_current(
        self, root: Path, mount: MemoryStoreResource, path: str, known: dict[str, Synced]
    ) -> None:
        async with self.database.read() as db:
            current = await sync.current_content(db, mount.memory_store_id, path)
        if current is None:
            await asyncio.to_thread(fs.remove, root, path)
            known.pop(path, None)
        else:
            known[path] = await asyncio.to_thread(fs.write, root, path, current.encode("utf-8"))

    async def flush(self, sandbox: SandboxBackend, session_id: str) -> None:
        """The last sync of a stopped sandbox, from the mounts recorded when they were placed
        (the session row may be gone); nobody is left to tell, so problems are logged (a conflict
        is kept as a version all the same)."""
        mounted = await asyncio.to_thread(_load_mounts, _sync_dir(sandbox, session_id))
        for note in await self.sync(sandbox, session_id, mounted):
            log.warning("session %s: memory sync when its sandbox stopped: %s", session_id, note[:500])

    def forget(self, session_id: str) -> None:
        for key in [k for k in self._placing if k[0] == session_id]:
            self._placing.pop(key)
        self._locks.pop(session_id, None)


def with_notes(results: list[EventRecord], notes: Sequence[str]) -> None:
    """Tell the agent about memory sync problems in the last tool result of the step."""
    if not notes or not results:
        return
    content = results[-1].get("content")
    if content is not None:
        content.append({"type": "text", "text": "[memory sync]\n" + "\n".join(notes)})

