"""Worker leases on sessions: claim with expiry and a fencing token, renew, release.

A worker owns a session only while its lease is live. Every write a worker makes first checks
its token (`fence`), so a worker that lost its lease (paused, partitioned, presumed dead) can
never write after another worker took over.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from app.db.base import utcnow
from app.db.models import Session
from app.sessions import repository


class LeaseLost(Exception):
    """This worker no longer holds the session's lease."""


@dataclass(frozen=True)
class Claim:
    session_id: str
    token: int
    # Set for a thread of a multi-agent session: the session it belongs to, whose sandbox,
    # files and vaults it shares, and whose row is locked before the thread's (one lock order).
    parent_id: str | None = None

    @property
    def sandbox_id(self) -> str:
        """Whose sandbox the calls run in: a thread shares its session's."""
        return self.parent_id or self.session_id


async def claim(db: AsyncSession, owner: str, lease_seconds: float, limit: int) -> list[Claim]:
    """Take up to `limit` runnable sessions (`FOR UPDATE SKIP LOCKED` on PostgreSQL)."""
    now = utcnow()
    expires = now + timedelta(seconds=lease_seconds)
    claims = []
    for session_id in await repository.runnable_ids(db, now, limit):
        taken = await repository.take_lease(db, session_id, owner, now, expires)
        if taken is not None:
            claims.append(Claim(session_id, taken[0], taken[1]))
    return claims


async def seconds_until_runnable(db: AsyncSession) -> float | None:
    """How long until a session may be claimed (0 or less: one may now); None: none waits."""
    now = utcnow()
    due = await repository.next_runnable_at(db, now)
    return None if due is None else (due - now).total_seconds()


async def renew(db: AsyncSession, claim: Claim, lease_seconds: float) -> bool:
    return await repository.extend_lease(
        db, claim.session_id, claim.token, utcnow() + timedelta(seconds=lease_seconds)
    )


async def fence(db: AsyncSession, claim: Claim) -> Session:
    """The session row, locked for this transaction, if this worker still holds the lease. A
    thread's session is locked first: a thread writes to its session's log, the session's
    steps write to its threads, and both take the locks in this order."""
    if claim.parent_id is not None:
        await repository.get(db, claim.parent_id, for_update=True)
    row = await repository.get(db, claim.session_id, for_update=True)
    if row is None or row.lease_token != claim.token:
        raise LeaseLost(claim.session_id)
    return row


async def fenced_seqs(db: AsyncSession, claim: Claim, count: int, *, tools_finished: bool = False) -> int:
    """`fence` and the log positions of an append (the last of ``count``) in one statement,
    without loading the row: for a step that writes only events (and, with ``tools_finished``,
    that no call is in flight any more). Same locks, in the same order, as `fence`."""
    if claim.parent_id is not None:
        await repository.lock(db, claim.parent_id)
    last = await repository.fenced_seqs(
        db, claim.session_id, claim.token, count, tools_finished=tools_finished
    )
    if last is None:
        raise LeaseLost(claim.session_id)
    return last


def release(row: Session, wake_at: datetime | None) -> None:
    """Give the session up; it is runnable again at `wake_at` (None: only when woken)."""
    row.lease_owner = None
    row.lease_expires_at = None
    row.wake_at = wake_at
