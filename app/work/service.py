"""The self-hosted work queue (behaviour §17): a session of a `self_hosted` environment becomes a
work item that an outside worker polls, acknowledges, keeps alive with heartbeats and stops.

States: `queued` → (poll claims it; unacknowledged claims older than `reclaim_older_than_ms` can be
claimed again) → `starting` (ack) → `active` (first heartbeat) → `stopping` (graceful stop) →
`stopped`. A claimed item whose lease runs out (no heartbeat within its TTL) goes back to `queued`
with a fresh sessions token, so a worker killed mid-tool is replaced by the next poll; the old
token stops working at once. Heartbeats are conditional: the first sends `NO_HEARTBEAT`, later ones
echo the server's last value; anything else is 412 `heartbeat_precondition_failed`.
"""

from __future__ import annotations

import base64
import json
import secrets
from datetime import datetime, timedelta
from typing import TypedDict

from sqlalchemy.ext.asyncio import AsyncSession

from app.apikeys.service import hash_key
from app.db.base import utcnow
from app.db.engine import wake_after_commit
from app.db.models import WorkItem
from app.errors import Conflict, InvalidRequest, NotFound, PreconditionFailed
from app.ids import new_id
from app.shared.metadata import patch_metadata
from app.shared.pagination import decode_cursor, decode_time_key, newest_first_page
from app.work import repository
from app.work.schemas import SessionWorkData, Work, WorkHeartbeat, WorkPage, WorkQueueStats, WorkState

NO_HEARTBEAT = "NO_HEARTBEAT"
TOKEN_PREFIX = "sk-mas-work-"
DEFAULT_RECLAIM_MS = 5000
WORKERS_POLLING_WINDOW = timedelta(seconds=30)
WAKE_TOPIC = "work"  # the notifier's topic that wakes the long polls (an item was queued)


def _view(row: WorkItem, secret: str | None = None) -> Work:
    return Work(
        id=row.id,
        environment_id=row.environment_id,
        data=SessionWorkData(id=row.session_id),
        state=_state(row.state),
        metadata=dict(row.metadata_),
        created_at=row.created_at,
        acknowledged_at=row.acknowledged_at,
        started_at=row.started_at,
        latest_heartbeat_at=row.latest_heartbeat_at,
        stop_requested_at=row.stop_requested_at,
        stopped_at=row.stopped_at,
        secret=secret,
    )


def _state(value: str) -> WorkState:
    if value not in ("queued", "starting", "active", "stopping", "stopped"):
        raise ValueError(f"unknown work state {value!r}")
    return value  # type: ignore[return-value]


# --- what sessions ask for --------------------------------------------------------------------


async def enqueue(db: AsyncSession, environment_id: str, session_id: str) -> None:
    """Queue a session for the environment's workers."""
    now = utcnow()
    row = WorkItem(
        id=new_id("work"),
        environment_id=environment_id,
        session_id=session_id,
        state="queued",
        metadata_={},
        created_at=now,
        queued_at=now,
        ttl_seconds=0,  # set when a worker acknowledges it
        attempts=0,
    )
    repository.add(db, row)
    await db.flush()
    wake_after_commit(db, WAKE_TOPIC)


async def enqueue_if_dormant(db: AsyncSession, environment_id: str, session_id: str) -> bool:
    """New input for a session no worker holds any more (every work item stopped): queue it again."""
    if await repository.live_for_session(db, session_id):
        return False
    await enqueue(db, environment_id, session_id)
    return True


async def stop_session_work(db: AsyncSession, session_id: str) -> None:
    """The session ended (archived, deleted): items nobody holds stop at once; a worker holding
    one learns from its next heartbeat (`stopping`) and confirms with its own stop."""
    now = utcnow()
    for row in await repository.live_for_session(db, session_id):
        if row.state == "queued":
            _stop_now(row, now)
        elif row.state != "stopping":
            row.state = "stopping"
            row.stop_requested_at = now
    await db.flush()


# --- the worker's calls -------------------------------------------------------------------------


def _new_secret(row: WorkItem) -> str:
    """URL-safe base64 JSON without padding holding `sessions_token`, as the SDK worker reads it."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row.token_hash = hash_key(token)
    payload = json.dumps({"version": 1, "sessions_token": token}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(payload).decode().rstrip("=")


def reclaim_before(now: datetime, reclaim_older_than_ms: int | None) -> datetime:
    ms = DEFAULT_RECLAIM_MS if reclaim_older_than_ms is None else reclaim_older_than_ms
    return now - timedelta(milliseconds=ms)


async def has_work(db: AsyncSession, environment_id: str, reclaim_older_than_ms: int | None) -> bool:
    now = utcnow()
    return await repository.has_claimable(db, environment_id, reclaim_before(now, reclaim_older_than_ms), now)


async def claim(
    db: AsyncSession, environment_id: str, worker_id: str | None, reclaim_older_than_ms: int | None
) -> Work | None:
    """One poll: the oldest claimable item with a fresh secret, or None."""
    now = utcnow()
    if worker_id:
        await repository.record_poller(db, environment_id, worker_id[:256], now)
    await repository.requeue_expired(db, environment_id, now)
    row = await repository.next_claimable(db, environment_id, reclaim_before(now, reclaim_older_than_ms))
    if row is None:
        return None
    row.polled_at = now
    row.worker_id = worker_id[:256] if worker_id else None
    row.attempts += 1
    secret = _new_secret(row)
    await db.flush()
    return _view(row, secret)


async def _load(db: AsyncSession, environment_id: str, work_id: str, *, for_update: bool = False) -> WorkItem:
    row = await repository.get(db, work_id, for_update=for_update)
    if row is None or row.environment_id != environment_id:
        raise NotFound(f"Work {work_id} not found")
    return row


async def ack(db: AsyncSession, environment_id: str, work_id: str, ttl_seconds: int) -> Work:
    """`queued` (claimed by a poll) → `starting`, leased for ``ttl_seconds`` until the first heartbeat.
    Acknowledging an item already starting is a no-op (a reclaimed poll's late ack)."""
    row = await _load(db, environment_id, work_id, for_update=True)
    now = utcnow()
    if row.state == "queued" and row.polled_at is None:
        raise Conflict(f"Work {work_id} has not been claimed by a poll; poll for it first")
    if row.state == "queued":
        row.state = "starting"
        row.acknowledged_at = now
        row.ttl_seconds = ttl_seconds
        row.lease_expires_at = now + timedelta(seconds=ttl_seconds)
    elif row.state != "starting":
        raise Conflict(f"Work {work_id} is {row.state}; only queued work can be acknowledged")
    await db.flush()
    return _view(row)


class LeaseState(TypedDict):
    """The ``current_state`` of a refused heartbeat's error details."""

    last_heartbeat: str | None
    lease_extended: bool
    state: str
    ttl_seconds: int


def _lease_state(row: WorkItem) -> LeaseState:
    return {
        "last_heartbeat": row.last_heartbeat,
        "lease_extended": False,
        "state": row.state,
        "ttl_seconds": row.ttl_seconds,
    }


def _precondition_failed(row: WorkItem, message: str) -> PreconditionFailed:
    return PreconditionFailed(
        message, error_code="heartbeat_precondition_failed", details={"current_state": _lease_state(row)}
    )


def _requeue_if_expired(row: WorkItem, now: datetime) -> None:
    if row.state in repository.LEASED and row.lease_expires_at is not None and row.lease_expires_at < now:
        row.state = "queued"
        row.queued_at = now
        row.polled_at = row.worker_id = row.acknowledged_at = row.started_at = None
        row.last_heartbeat = row.lease_expires_at = row.token_hash = None


def _next_beat(row: WorkItem, now: datetime) -> str:
    value = now.isoformat().replace("+00:00", "Z")
    if value == row.last_heartbeat:  # two beats in one microsecond must still differ
        value = (now + timedelta(microseconds=1)).isoformat().replace("+00:00", "Z")
    return value


async def heartbeat(
    db: AsyncSession,
    environment_id: str,
    work_id: str,
    *,
    expected_last_heartbeat: str | None,
    desired_ttl_seconds: int | None,
    max_ttl_seconds: int,
) -> WorkHeartbeat:
    if desired_ttl_seconds is not None and not 1 <= desired_ttl_seconds <= max_ttl_seconds:
        raise InvalidRequest(f"desired_ttl_seconds: must be between 1 and {max_ttl_seconds}")
    row = await _load(db, environment_id, work_id, for_update=True)
    now = utcnow()
    _requeue_if_expired(row, now)
    if row.state == "stopped":
        return WorkHeartbeat(
            last_heartbeat=row.last_heartbeat or "",
            lease_extended=False,
            state="stopped",
            ttl_seconds=row.ttl_seconds,
        )
    if row.state == "queued":
        raise _precondition_failed(row, f"Work {work_id} is queued: no worker holds its lease")
    held = row.last_heartbeat or NO_HEARTBEAT
    if row.state != "stopping" and expected_last_heartbeat not in (None, held):
        raise _precondition_failed(
            row,
            "expected_last_heartbeat does not match the stored heartbeat; another worker may hold the lease",
        )
    if desired_ttl_seconds is not None:
        row.ttl_seconds = desired_ttl_seconds
    if row.state == "starting":
        row.state = "active"
        row.started_at = now
    row.last_heartbeat = _next_beat(row, now)
    row.latest_heartbeat_at = now
    row.lease_expires_at = now + timedelta(seconds=row.ttl_seconds)
    await db.flush()
    return WorkHeartbeat(
        last_heartbeat=row.last_heartbeat,
        lease_extended=True,
        state=_state(row.state),
        ttl_seconds=row.ttl_seconds,
    )


def _stop_now(row: WorkItem, now: datetime) -> None:
    row.state = "stopped"
    row.stopped_at = now
    row.stop_requested_at = row.stop_requested_at or now
    row.lease_expires_at = None
    row.token_hash = None


async def stop(db: AsyncSession, environment_id: str, work_id: str, *, force: bool) -> Work:
    """Graceful: `stopping` until the worker confirms (its next heartbeat says so); forced, or an
    item no worker holds: `stopped` at once. Stopping a stopped item is 409."""
    row = await _load(db, environment_id, work_id, for_update=True)
    now = utcnow()
    _requeue_if_expired(row, now)
    if row.state == "stopped":
        raise Conflict(f"Work {work_id} is already stopped")
    if force or row.state == "queued":
        _stop_now(row, now)
    elif row.state != "stopping":
        row.state = "stopping"
        row.stop_requested_at = now
    await db.flush()
    return _view(row)


async def update(
    db: AsyncSession, environment_id: str, work_id: str, metadata: dict[str, str | None]
) -> Work:
    row = await _load(db, environment_id, work_id, for_update=True)
    row.metadata_ = patch_metadata(row.metadata_, metadata)
    await db.flush()
    return _view(row)


async def get(db: AsyncSession, environment_id: str, work_id: str) -> Work:
    return _view(await _load(db, environment_id, work_id))


async def list_work(db: AsyncSession, environment_id: str, *, limit: int, page: str | None) -> WorkPage:
    after = decode_time_key(decode_cursor(page, "desc"))
    rows, next_page = newest_first_page(
        await repository.list_page(db, environment_id, after, limit + 1), limit
    )
    return WorkPage(data=[_view(r) for r in rows], next_page=next_page)


async def stats(db: AsyncSession, environment_id: str) -> WorkQueueStats:
    now = utcnow()
    depth, pending, oldest = await repository.stats(db, environment_id, reclaim_before(now, None), now)
    polling = await repository.pollers_since(db, environment_id, now - WORKERS_POLLING_WINDOW)
    return WorkQueueStats(depth=depth, pending=pending, oldest_queued_at=oldest, workers_polling=polling)


# --- credentials ----------------------------------------------------------------------------------


async def token_holder(db: AsyncSession, token: str) -> WorkItem | None:
    """The live work item whose latest sessions token is ``token``."""
    if not token.startswith(TOKEN_PREFIX):
        return None
    row = await repository.by_token_hash(db, hash_key(token))
    return row if row is not None and row.state in repository.LIVE else None


async def queued_count(db: AsyncSession) -> int:
    """Work items of every self-hosted environment waiting for a worker (metrics)."""
    return await repository.count_queued(db)
