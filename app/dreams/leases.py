"""Leases on running dreams: a worker's dream runner claims a dream with an expiry and a fencing
token and renews the lease while it works.

A dream whose worker died (its lease expired) is claimed again by the next runner that looks, and
runs again from its input (the output store made by the first attempt is reused, and the usage
already spent is kept). After ``MAX_ATTEMPTS`` lost workers it fails with a clear error instead:
a dream that takes its worker down every time must not take every worker down in turn.
Every write of the runner first checks its token (``fence``), so a worker presumed dead that wakes
up again never writes over the one that took over.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from app.db.base import utcnow
from app.db.models import Dream
from app.dreams import repository, service

MAX_ATTEMPTS = 2


class DreamLeaseLost(Exception):
    """This runner no longer holds the dream's lease."""


@dataclass(frozen=True)
class DreamJob:
    """A claimed dream, as the runner works on it."""

    id: str
    token: int
    memory_store_id: str
    session_ids: tuple[str, ...]
    model: str
    instructions: str | None
    in_place: bool
    # Set when an earlier attempt already made the output store (reused, never made twice).
    output_store_id: str | None
    attempt: int


def _abandoned(row: Dream, lease_seconds: float) -> tuple[str, str]:
    return (
        "internal_error",
        f"The worker running this dream stopped answering {row.attempts} times (no lease renewal "
        f"within {lease_seconds:g} s, e.g. the process was killed); the dream was not finished. "
        "Memories it wrote before that are kept; create the dream again to retry.",
    )


async def claim(db: AsyncSession, owner: str, lease_seconds: float) -> DreamJob | None:
    """Take the oldest pending dream, or a running one whose worker died (``-> running``); a dead
    worker's dream that used up its attempts is failed on the way."""
    now = utcnow()
    while (row := await repository.claimable(db, now)) is not None:
        if row.status == "running" and row.attempts >= MAX_ATTEMPTS:
            await service.finish(db, row.id, _abandoned(row, lease_seconds))
            continue
        row.status, row.updated_at = "running", now
        row.lease_owner, row.lease_token = owner, row.lease_token + 1
        row.lease_expires_at = now + timedelta(seconds=lease_seconds)
        row.attempts += 1
        await db.flush()
        return DreamJob(
            id=row.id,
            token=row.lease_token,
            memory_store_id=row.memory_store_id,
            session_ids=tuple(row.session_ids),
            model=str(row.model["id"]),
            instructions=row.instructions,
            in_place=row.output_behavior.get("type") == "update_existing",
            output_store_id=row.output_store_id,
            attempt=row.attempts,
        )
    return None


async def seconds_until_claimable(db: AsyncSession) -> float | None:
    """How long until a dream may be claimed (0 or less: one may now); None: none waits or runs."""
    now = utcnow()
    due = await repository.next_claimable_at(db, now)
    return None if due is None else (due - now).total_seconds()


async def fence(db: AsyncSession, job: DreamJob) -> None:
    """Lock the dream for this transaction if the runner still holds its lease (a canceled dream
    is still the runner's to add usage to)."""
    row = await repository.get(db, job.id, lock=True)
    if row is None or row.lease_token != job.token:
        raise DreamLeaseLost(job.id)


async def renew(db: AsyncSession, job: DreamJob, lease_seconds: float) -> bool:
    """Extend the lease; False if another runner took the dream over (or it is gone)."""
    row = await repository.get(db, job.id, lock=True)
    if row is None or row.lease_token != job.token:
        return False
    row.lease_expires_at = utcnow() + timedelta(seconds=lease_seconds)
    await db.flush()
    return True


async def release(db: AsyncSession, job: DreamJob) -> None:
    """Give a running dream back at once (the runner stops gracefully): the next runner takes it
    without waiting for the lease to expire, and it does not count as a lost attempt."""
    row = await repository.get(db, job.id, lock=True)
    if row is None or row.lease_token != job.token or row.status != "running":
        return
    row.lease_owner, row.lease_expires_at = None, utcnow()
    row.attempts = max(0, row.attempts - 1)
    await db.flush()
