"""Dreams: jobs that consolidate sessions and a memory store into a memory store with the model.

Statuses: ``pending`` -> ``running`` -> ``completed`` | ``failed``; ``cancel`` ends a pending or
running dream as ``canceled``. The three final statuses never change again (usage may still
grow after a cancel, as on the hosted API). Only final dreams can be archived.

``create`` checks the request and queues the dream; a worker's dream runner
(``app/worker/dreams``) claims it under a lease (``app/dreams/leases``), then calls
``record_output``, ``add_usage`` and ``finish`` as it works (each after ``leases.fence``), and
looks at ``is_canceled`` between model requests.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from app.db import models
from app.db.base import utcnow
from app.db.dream_json import DreamModel, DreamOutputBehavior
from app.db.engine import wake_after_commit
from app.dreams import repository
from app.dreams.schemas import (
    ACTIVE,
    FINAL,
    STATUSES,
    Dream,
    DreamCreate,
    DreamPage,
    DreamUsage,
    MemoryStoreInput,
    ModelParams,
    SessionsInput,
    UpdateExisting,
)
from app.errors import Conflict, InvalidRequest, NotFound
from app.ids import new_id
from app.memory_stores import service as memory_stores
from app.sessions import service as sessions
from app.shared.pagination import (
    decode_cursor,
    decode_time_key,
    newest_first_page,
)
from app.shared.text import check_single_line, utf8_size

WAKE_TOPIC = "dreams"  # the notifier's topic that wakes the dream runners (a dream was queued)


@dataclass(frozen=True)
class DreamPlan:
    """A checked create request."""

    memory_store_id: str
    session_ids: tuple[str, ...]
    model: DreamModel
    instructions: str | None
    output_behavior: DreamOutputBehavior


def _view(row: models.Dream) -> Dream:
    return Dream.model_validate(
        {
            "id": row.id,
            "status": row.status,
            "inputs": [
                {"type": "memory_store", "memory_store_id": row.memory_store_id},
                {"type": "sessions", "session_ids": sorted(row.session_ids)},
            ],
            "model": row.model,
            "instructions": row.instructions,
            "output_behavior": row.output_behavior,
            "outputs": [{"type": "memory_store", "memory_store_id": row.output_store_id}]
            if row.output_store_id
            else [],
            "session_id": row.session_id,
            "error": row.error,
            "usage": row.usage,
            "created_at": row.created_at,
            "ended_at": row.ended_at,
            "archived_at": row.archived_at,
        }
    )


async def _get_row(db: AsyncSession, dream_id: str, *, lock: bool = False) -> models.Dream:
    row = await repository.get(db, dream_id, lock=lock)
    if row is None:
        raise NotFound(f"Dream {dream_id} not found.")
    return row


# --- create -------------------------------------------------------------------------------------


def _one(params: DreamCreate) -> tuple[int, MemoryStoreInput, int, SessionsInput]:
    stores = [(i, x) for i, x in enumerate(params.inputs) if isinstance(x, MemoryStoreInput)]
    session_sets = [(i, x) for i, x in enumerate(params.inputs) if isinstance(x, SessionsInput)]
    if len(stores) != 1 or len(session_sets) != 1:
        raise InvalidRequest("inputs: give exactly one `memory_store` entry and exactly one `sessions` entry")
    return stores[0][0], stores[0][1], session_sets[0][0], session_sets[0][1]


async def _check_store(db: AsyncSession, store_id: str, where: str) -> None:
    try:
        store = await memory_stores.get(db, store_id)
    except NotFound as exc:
        raise NotFound(f"{where}: {exc.message}") from None
    if store.archived_at is not None:
        raise InvalidRequest(f"{where}: memory store {store_id} is archived")


async def _check_sessions(db: AsyncSession, session_ids: Sequence[str], where: str) -> None:
    seen: set[str] = set()
    for i, session_id in enumerate(session_ids):
        if session_id in seen:
            raise InvalidRequest(f"{where}[{i}]: session {session_id} is listed twice")
        seen.add(session_id)
        try:
            await sessions.get(db, session_id)
        except NotFound as exc:
            raise NotFound(f"{where}[{i}]: {exc.message}") from None


def _model(params: ModelParams) -> DreamModel:
    check_single_line(params.id, "model.id")
    if params.speed == "fast":
        raise InvalidRequest("model.speed: dreams run only at 'standard' speed")
    return {"id": params.id, "speed": "standard"}


async def _output_behavior(db: AsyncSession, params: DreamCreate, store_id: str) -> DreamOutputBehavior:
    behavior = params.output_behavior
    if not isinstance(behavior, UpdateExisting):
        return {"type": "create_new"}
    if behavior.memory_store_id != store_id:
        raise InvalidRequest(
            "output_behavior.memory_store_id: must be the memory store of the `memory_store` input "
            f"({store_id})"
        )
    if await repository.active_update_of(db, store_id, ACTIVE) is not None:
        raise Conflict(f"Another dream is still updating memory store {store_id}; wait for it to stop.")
    return {"type": "update_existing", "memory_store_id": store_id}


async def plan(db: AsyncSession, params: DreamCreate) -> DreamPlan:
    """Check a create request against the stores and sessions it names."""
    store_at, store, sessions_at, session_set = _one(params)
    await _check_store(db, store.memory_store_id, f"inputs[{store_at}].memory_store_id")
    await _check_sessions(db, session_set.session_ids, f"inputs[{sessions_at}].session_ids")
    if params.instructions is not None:
        utf8_size(params.instructions, "instructions")
    return DreamPlan(
        memory_store_id=store.memory_store_id,
        session_ids=tuple(sorted(session_set.session_ids)),
        model=_model(params.model),
        instructions=params.instructions,
        output_behavior=await _output_behavior(db, params, store.memory_store_id),
    )


async def create(db: AsyncSession, params: DreamCreate) -> Dream:
    """Check the request and queue the dream (``pending`` until a worker runs it)."""
    return await enqueue(db, await plan(db, params))


async def enqueue(db: AsyncSession, checked: DreamPlan) -> Dream:
    """A pending dream from a checked plan."""
    now = utcnow()
    in_place = checked.output_behavior["type"] == "update_existing"
    row = models.Dream(
        id=new_id("drm"),
        status="pending",
        memory_store_id=checked.memory_store_id,
        update_store_id=checked.memory_store_id if in_place else None,
        session_ids=list(checked.session_ids),
        model=checked.model,
        instructions=checked.instructions,
        output_behavior=checked.output_behavior,
        output_store_id=None,
        session_id=None,
        error=None,
        usage={
            "input_tokens": 0,
            "output_tokens": 0,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
        },
        created_at=now,
        updated_at=now,
        ended_at=None,
        archived_at=None,
    )
    repository.add(db, row)
    await db.flush()
    wake_after_commit(db, WAKE_TOPIC)
    return _view(row)


# --- read, cancel, archive ----------------------------------------------------------------------


async def get(db: AsyncSession, dream_id: str) -> Dream:
    return _view(await _get_row(db, dream_id))


def check_statuses(statuses: Sequence[str] | None) -> Sequence[str] | None:
    for status in statuses or ():
        if status not in STATUSES:
            raise InvalidRequest(f"statuses: {status!r} is not one of {', '.join(STATUSES)}")
    return statuses


async def list_dreams(
    db: AsyncSession,
    *,
    created_at: dict[str, datetime],
    statuses: Sequence[str] | None,
    include_archived: bool,
    limit: int,
    page: str | None,
) -> DreamPage:
    """Newest first."""
    rows = await repository.list_page(
        db,
        created_at=created_at,
        statuses=check_statuses(statuses),
        include_archived=include_archived,
        after=decode_time_key(decode_cursor(page, "desc")),
        limit=limit + 1,
    )
    shown, next_page = newest_first_page(rows, limit)
    return DreamPage(data=[_view(r) for r in shown], next_page=next_page)


def _end(row: models.Dream, status: str) -> None:
    row.status = status
    row.ended_at = row.updated_at = utcnow()


async def cancel(db: AsyncSession, dream_id: str) -> Dream:
    """Stop a pending or running dream; canceling a canceled one changes nothing."""
    row = await _get_row(db, dream_id, lock=True)
    if row.status in ("completed", "failed"):
        raise InvalidRequest(
            f"Dream {row.id} has already {row.status}; only pending or running dreams cancel."
        )
    if row.status in ACTIVE:
        _end(row, "canceled")
        await db.flush()
    return _view(row)


async def archive(db: AsyncSession, dream_id: str) -> Dream:
    """Hide a finished dream from default lists (idempotent); a pending or running one is a 400."""
    row = await _get_row(db, dream_id, lock=True)
    if row.status not in FINAL:
        raise InvalidRequest(f"Dream {row.id} is {row.status}; cancel it before archiving it.")
    if row.archived_at is None:
        row.archived_at = row.updated_at = utcnow()
        await db.flush()
    return _view(row)


# --- transitions the dream runner makes ----------------------------------------------------------


async def is_canceled(db: AsyncSession, dream_id: str) -> bool:
    return (await _get_row(db, dream_id)).status == "canceled"


async def start(db: AsyncSession, dream_id: str, session_id: str | None) -> bool:
    """``pending`` -> ``running`` (in session ``session_id``, if one runs it); False if the dream
    is no longer pending."""
    row = await _get_row(db, dream_id, lock=True)
    if row.status != "pending":
        return False
    row.status, row.session_id, row.updated_at = "running", session_id, utcnow()
    await db.flush()
    return True


async def record_output(db: AsyncSession, dream_id: str, memory_store_id: str) -> None:
    """The store the dream writes its result to (``outputs``)."""
    row = await _get_row(db, dream_id, lock=True)
    row.output_store_id, row.updated_at = memory_store_id, utcnow()
    await db.flush()


async def add_usage(db: AsyncSession, dream_id: str, usage: DreamUsage) -> None:
    """Add one model request's tokens (counted even after a cancel)."""
    row = await _get_row(db, dream_id, lock=True)
    was = row.usage
    row.usage = {
        "input_tokens": was["input_tokens"] + usage.input_tokens,
        "output_tokens": was["output_tokens"] + usage.output_tokens,
        "cache_creation_input_tokens": was["cache_creation_input_tokens"] + usage.cache_creation_input_tokens,
        "cache_read_input_tokens": was["cache_read_input_tokens"] + usage.cache_read_input_tokens,
    }
    row.updated_at = utcnow()
    await db.flush()


async def finish(db: AsyncSession, dream_id: str, error: tuple[str, str] | None = None) -> bool:
    """End a running dream as ``completed`` or, with ``(type, message)``, ``failed``; False if it
    is not running (a cancel won the race, and keeps its status)."""
    row = await _get_row(db, dream_id, lock=True)
    if row.status != "running":
        return False
    if error is not None:
        row.error = {"type": error[0], "message": error[1]}
    _end(row, "failed" if error is not None else "completed")
    await db.flush()
    return True
