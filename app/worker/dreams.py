"""The dream runner: a small background service that runs pending dreams with the model.

A dream reads a memory store and the transcripts of some sessions, and writes a reorganised
store. The runner claims the oldest pending dream, makes the output store (a new one holding a
copy of the input's memories, or the input itself for ``update_existing``), then talks to the
model through the same client the agent loop uses (so the offline model drives it in tests):
the model gets the memories and the transcripts and edits the output with two tools,
``write_memory`` and ``delete_memory``, for at most ``MAX_ROUNDS`` requests. Every request's
tokens are added to the dream's usage; a cancel is noticed before the next request. A model error
fails the dream (``model_error``); so does anything unexpected (``internal_error``).

The runner holds a lease on the dream and renews it while it works (``app/dreams/leases``): a
dream whose worker died is taken again by another runner once the lease expires, and every write
is fenced by the lease's token, so a runner that lost its lease stops instead of writing on.

Memory versions a dream writes have no ``created_by`` (no session or API key wrote them).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from collections.abc import Sequence

from app.agent_loop.model_client import (
    Message,
    MessageComplete,
    ModelClient,
    ModelError,
    ModelRequest,
    complete,
)
from app.config import Settings
from app.db.engine import Database
from app.dreams import leases
from app.dreams import service as dreams
from app.dreams.leases import DreamJob, DreamLeaseLost
from app.dreams.schemas import DreamUsage
from app.errors import ApiError
from app.events import service as events
from app.events.notifier import Notifier
from app.events.types import ContentBlock, EventRecord
from app.memory_stores import memories, sync
from app.memory_stores import service as memory_stores
from app.memory_stores.schemas import MemoryStoreCreate
from app.shared.content import ToolDefinition
from app.shared.loops import AT_ONCE, LoopService
from app.worker.renewal import LeaseRenewal

log = logging.getLogger(__name__)

MAX_ROUNDS = 8
MAX_TRANSCRIPT_CHARS = 200_000
MAX_TOKENS = 8_192
SYSTEM = (
    "You are dreaming: you consolidate an agent's long-term memory. You get the memories of a "
    "memory store (text files at paths) and transcripts of recent sessions. Rewrite the store so "
    "that it holds what is worth remembering: merge duplicates, fix what the sessions showed to be "
    "wrong or outdated, add durable facts and lessons from the sessions, and organise memories by "
    "topic under clear paths. Keep each memory short and factual. Use write_memory to create or "
    "replace a memory and delete_memory to remove one. When the store is in order, reply with a "
    "one-paragraph summary of what you changed."
)
TOOLS: list[ToolDefinition] = [
    {
        "name": "write_memory",
        "description": "Create the memory at `path`, or replace its content.",
        "input_schema": {
            "type": "object",
            "properties": {
                "path": {"type": "string", "description": "e.g. /projects/mas.md"},
                "content": {"type": "string", "description": "UTF-8 text, at most 100 kB"},
            },
            "required": ["path", "content"],
        },
    },
    {
        "name": "delete_memory",
        "description": "Delete the memory at `path`.",
        "input_schema": {
            "type": "object",
            "properties": {"path": {"type": "string"}},
            "required": ["path"],
        },
    },
]


def _transcript(session_id: str, history: Sequence[EventRecord]) -> str:
    lines = [f'<session id="{session_id}">']
    for event in history:
        kind = event["type"]
        if kind in ("user.message", "agent.message"):
            text = "".join(b.get("text", "") for b in event.get("content") or [] if b.get("type") == "text")
            lines.append(f"{'User' if kind == 'user.message' else 'Agent'}: {text}")
        elif kind in ("agent.tool_use", "agent.custom_tool_use", "agent.mcp_tool_use"):
            lines.append(f"Agent used the tool {event.get('name')}")
    lines.append("</session>")
    return "\n".join(lines)


def _tool_result(use: ContentBlock, message: str, is_error: bool) -> ContentBlock:
    block: ContentBlock = {
        "type": "tool_result",
        "tool_use_id": use["id"],
        "content": [{"type": "text", "text": message}],
    }
    if is_error:
        block["is_error"] = True
    return block


def _usage(reply: MessageComplete) -> DreamUsage:
    return DreamUsage(
        input_tokens=reply.usage.input_tokens,
        output_tokens=reply.usage.output_tokens,
        cache_creation_input_tokens=reply.usage.cache_creation_input_tokens,
        cache_read_input_tokens=reply.usage.cache_read_input_tokens,
    )


class DreamRunner(LoopService):
    """Runs dreams as a loop service: a new dream wakes it (the notifier), a dream whose worker
    died is found when its lease expires, and `MAS_DREAMS_POLL_SECONDS` is the safety poll."""

    def __init__(
        self, database: Database, model: ModelClient, settings: Settings, notifier: Notifier
    ) -> None:
        interval = settings.dreams_poll_seconds
        super().__init__("dream-runner", interval, enabled=interval > 0)
        self.database = database
        self.model = model
        self.lease_seconds = settings.worker_lease_seconds
        self.missed_poll_seconds = settings.missed_wakeup_poll_seconds
        self.owner = f"{socket.gethostname()}-{os.getpid()}-dreams-{uuid.uuid4().hex[:6]}"
        self.wake_on(notifier, dreams.WAKE_TOPIC, settings.missed_wakeup_poll_seconds)

    async def run_once(self) -> float | None:
        """Run the dreams there are; when one may be claimed next (one is created, a lease expires)."""
        async with self.database.read() as db:  # idle rounds read; they take no write lock
            wait = await leases.seconds_until_claimable(db)
        if wait is None or wait > 0:
            return wait
        ran = 0
        while await self.run_next():
            ran += 1
        # Nothing run: another runner claimed what the read saw; look again shortly.
        return AT_ONCE if ran else self.missed_poll_seconds

    async def run_next(self) -> bool:
        """Claim and run one dream (pending, or left by a dead worker); False when there was none."""
        async with self.database.unit_of_work() as db:
            job = await leases.claim(db, self.owner, self.lease_seconds)
        if job is None:
            return False
        if job.attempt > 1:
            log.warning("dream %s: its worker died; running it again (attempt %d)", job.id, job.attempt)
        running = asyncio.create_task(self._outcome(job))
        renewing = self._renewal(job, running)
        await renewing.start()
        try:
            error = await running
        except asyncio.CancelledError:
            if not renewing.lost:  # this runner itself is stopping: the next one takes over
                await asyncio.shield(self._give_back(job))
                raise
            log.warning("dream %s: lease lost; another worker runs it now", job.id)
            return True
        except DreamLeaseLost:
            log.warning("dream %s: lease lost; another worker runs it now", job.id)
            return True
        finally:
            await renewing.stop()
        with contextlib.suppress(DreamLeaseLost):
            async with self.database.unit_of_work() as db:
                await leases.fence(db, job)
                await dreams.finish(db, job.id, error)
        return True

    async def _outcome(self, job: DreamJob) -> tuple[str, str] | None:
        """Run the dream; how it failed (None: it did not)."""
        try:
            await self._run(job)
        except DreamLeaseLost:
            raise
        except ModelError as exc:
            return ("model_error", f"the model request failed: {exc.message}"[:2000])
        except Exception as exc:  # the dream fails; the runner goes on
            log.exception("dream %s failed", job.id)
            return ("internal_error", f"the dream could not be run: {type(exc).__name__}")
        return None

    async def _give_back(self, job: DreamJob) -> None:
        with contextlib.suppress(Exception):  # not given back: it is taken again when it expires
            async with self.database.unit_of_work() as db:
                await leases.release(db, job)

    def _renewal(self, job: DreamJob, running: asyncio.Task[tuple[str, str] | None]) -> LeaseRenewal:
        """Renews the dream's lease while it runs; cancels the run if the lease was lost."""

        async def renew() -> bool:
            async with self.database.unit_of_work() as db:
                return await leases.renew(db, job, self.lease_seconds)

        return LeaseRenewal(f"dream-lease-{job.id}", self.lease_seconds, renew, running)

    async def _run(self, job: DreamJob) -> None:
        output = await self._output_store(job)
        brief = await self._brief(job)
        messages: list[Message] = [{"role": "user", "content": [{"type": "text", "text": brief}]}]
        for _ in range(MAX_ROUNDS):
            async with self.database.read() as db:
                if await dreams.is_canceled(db, job.id):
                    return
            system: list[ContentBlock] = [{"type": "text", "text": SYSTEM}]
            request = ModelRequest(job.model, messages, MAX_TOKENS, system=system, tools=TOOLS)
            reply = await complete(self.model, request)
            async with self.database.unit_of_work() as db:
                await leases.fence(db, job)
                await dreams.add_usage(db, job.id, _usage(reply))
            uses = [b for b in reply.content if b.get("type") == "tool_use"]
            if not uses:
                return
            results = [await self._apply(job, output, use) for use in uses]
            messages.append({"role": "assistant", "content": reply.content})
            messages.append({"role": "user", "content": results})

    async def _output_store(self, job: DreamJob) -> str:
        """The store the dream writes: the input itself, or a new one holding a copy of it (made
        by an earlier attempt if there was one)."""
        if job.output_store_id is not None:
            return job.output_store_id
        if job.in_place:
            async with self.database.unit_of_work() as db:
                await leases.fence(db, job)
                await dreams.record_output(db, job.id, job.memory_store_id)
            return job.memory_store_id
        async with self.database.unit_of_work() as db:
            await leases.fence(db, job)
            source = await memory_stores.get(db, job.memory_store_id)
            name = f"{source.name} (dream {job.id[-8:]})"[-255:]
            about = f"Written by dream {job.id} from memory store {source.id}."
            output = await memory_stores.create(db, MemoryStoreCreate(name=name, description=about))
            async for memory in sync.mounted_memories(db, source.id):
                await memories.put_at(db, output.id, memory.path, memory.content, None)
            await dreams.record_output(db, job.id, output.id)
        return output.id

    async def _brief(self, job: DreamJob) -> str:
        parts = ["<memories>"]
        async with self.database.read() as db:
            async for memory in sync.mounted_memories(db, job.memory_store_id):
                parts.append(f'<memory path="{memory.path}">\n{memory.content}\n</memory>')
            parts.append("</memories>")
            budget = MAX_TRANSCRIPT_CHARS
            for session_id in job.session_ids:
                with contextlib.suppress(ApiError):
                    text = _transcript(session_id, await events.history(db, session_id))[:budget]
                    budget -= len(text)
                    parts.append(text)
        if job.instructions:
            parts.append(job.instructions)
        return "\n\n".join(parts)

    async def _apply(self, job: DreamJob, store_id: str, use: ContentBlock) -> ContentBlock:
        """One tool call on the output store; its tool_result (an error for bad input)."""
        arguments = use.get("input") or {}
        path = arguments.get("path")
        try:
            if not isinstance(path, str):
                raise ValueError("`path` must be a string such as /topic/note.md")
            async with self.database.unit_of_work() as db:
                await leases.fence(db, job)
                if use.get("name") == "write_memory":
                    content = arguments.get("content")
                    if not isinstance(content, str):
                        raise ValueError("`content` must be a string")
                    await memories.put_at(db, store_id, path, content, None)
                    return _tool_result(use, f"wrote {path}", False)
                if use.get("name") == "delete_memory":
                    found = await memories.delete_at(db, store_id, path, None)
                    return _tool_result(use, f"deleted {path}" if found else f"no memory at {path}", False)
            return _tool_result(use, f"unknown tool {use.get('name')!r}", True)
        except (ApiError, ValueError) as exc:
            return _tool_result(use, str(getattr(exc, "message", exc)), True)
