"""Sessions: create, read, list, update, archive, delete, and the events clients send.

A status change and the events announcing it are written in one transaction (see `transitions`).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from pydantic import JsonValue
from pydantic_core import to_json
from sqlalchemy.ext.asyncio import AsyncSession

from app.agents import service as agents
from app.db.base import utcnow
from app.db.engine import after_commit
from app.db.models import Session
from app.db.raw import RawConnection, RawReads, timestamp
from app.db.session_json import UsageTotals
from app.environments import service as environments
from app.errors import Conflict, InvalidRequest, NotFound
from app.events import service as events
from app.events.notifier import Notifier
from app.events.schemas import UserDefineOutcome, dump_event
from app.events.types import EventRecord
from app.files import service as files
from app.ids import new_id
from app.sessions import budgets, outcomes, repository, resources, threads, transitions, workflow_runs
from app.sessions.rendering import RenderedSessions
from app.sessions.repositories import RepoContext
from app.sessions.repository import SessionColumns
from app.sessions.resource_schemas import (
    FileResource,
    ResourceDeleted,
    ResourcePage,
    ResourceUpdate,
    SessionResource,
)
from app.sessions.schemas import (
    SessionCreate,
    SessionDeleted,
    SessionOut,
    SessionPage,
    SessionStats,
    SessionUpdate,
    public_usage,
    rolled_up,
)
from app.sessions.sending import QUEUED, accept_client_events
from app.sessions.thread_schemas import SessionThreadOut, ThreadPage
from app.shared.agent_config import SessionAgent
from app.shared.metadata import patch_metadata, validate_metadata
from app.shared.pagination import Cursor, decode_cursor, decode_time_key, encode_cursor, time_key
from app.shared.validation import INT64_MAX
from app.vaults import service as vaults
from app.webhooks import service as webhooks
from app.work import service as work

ACTIVE_STATUSES = ("running", "rescheduling")
STATUSES = ("rescheduling", "running", "idle", "terminated")


def check_statuses(statuses: Sequence[str] | None) -> Sequence[str] | None:
    for status in statuses or ():
        if status not in STATUSES:
            raise InvalidRequest(f"statuses: {status!r} is not one of {', '.join(STATUSES)}")
    return statuses


async def thread_usages(db: AsyncSession, row: Session) -> list[UsageTotals]:
    """The usage of a multi-agent session's child threads (none for other sessions)."""
    if not row.agent.get("multiagent"):
        return []
    return [child.usage for child in await repository.children(db, row.id)]


def to_out(
    row: Session | SessionColumns, now: datetime | None = None, threads_usage: Sequence[UsageTotals] = ()
) -> SessionOut:
    """The session; ``threads_usage`` (see `thread_usages`) is rolled into its usage."""
    now = now or utcnow()
    active = row.active_seconds + ((now - row.running_since).total_seconds() if row.running_since else 0.0)
    end = row.terminated_at or now
    usage = public_usage(rolled_up(row.usage, threads_usage), active)
    return SessionOut(
        id=row.id,
        agent=row.agent,
        environment_id=row.environment_id,
        status=row.status,
        title=row.title,
        metadata=row.metadata_,
        resources=row.resources,
        vault_ids=row.vault_ids,
        outcome_evaluations=outcomes.public(row),
        stats=SessionStats(
            active_seconds=round(active, 3), duration_seconds=(end - row.created_at).total_seconds()
        ),
        usage=usage,
        created_at=row.created_at,
        updated_at=row.updated_at,
        archived_at=row.archived_at,
        deployment_id=row.deployment_id,
        budget=row.budget,
    )


async def load(db: AsyncSession, session_id: str, *, for_update: bool = False) -> Session:
    row = await repository.get(db, session_id, for_update=for_update)
    if row is None or row.parent_session_id is not None:  # a thread is not a session
        raise NotFound(f"Session {session_id} not found")
    return row


async def exists(conn: RawConnection, session_id: str) -> bool:
    """Whether ``session_id`` is a session, read as ``load`` decides it (a thread is not one)."""
    return await repository.exists(conn, session_id)


async def get(db: AsyncSession, session_id: str) -> SessionOut:
    row = await load(db, session_id)
    return to_out(row, threads_usage=await thread_usages(db, row))


async def create(
    db: AsyncSession,
    notifier: Notifier,
    params: SessionCreate,
    repo_context: RepoContext | None = None,
    *,
    deployment_id: str | None = None,
) -> SessionOut:
    validate_metadata(params.metadata or {}, "metadata")
    environment = await environments.get_for_session(db, params.environment_id)
    agent_id, version, snapshot = await agents.resolve_session_agent(db, params.agent)
    vault_ids = await vaults.check_session_vaults(db, params.vault_ids or [])
    row = repository.new_row(
        id=new_id("sesn"),
        agent_id=agent_id,
        agent_version=version,
        agent=snapshot,
        environment_id=environment.id,
        vault_ids=vault_ids,
        title=params.title,
        metadata_=dict(params.metadata or {}),
        deployment_id=deployment_id,
        budget=budgets.parse(params.budget) if params.budget is not None else None,
    )
    now = row.created_at
    repository.add(db, row)
    await db.flush()
    if params.resources:
        config_type = str(environment.config.get("type", "cloud"))
        await resources.attach_at_create(db, row, params.resources, config_type, repo_context)
    await webhooks.emit(db, "session.created", row.id)
    if environment.config.get("type") == "self_hosted":
        await work.enqueue(db, environment.id, row.id)
    if params.initial_events:
        await _initial_events(db, notifier, row, params.initial_events)
        await transitions.start_running(db, notifier, row)
        transitions.request_run(db, notifier, row)
    after_commit(db, lambda: notifier.session_created(row.id))
    return to_out(row, now)


async def _initial_events(db: AsyncSession, notifier: Notifier, row: Session, initial: Sequence[Any]) -> None:
    """Persisted before the response returns, in order; the session starts running at once.
    Messages are queued for the agent; an outcome is processed on receipt (see `sending`)."""
    defined = [(f"initial_events[{i}]", e) for i, e in enumerate(initial) if isinstance(e, UserDefineOutcome)]
    await outcomes.check(db, row, defined)
    for event in initial:
        if isinstance(event, UserDefineOutcome):
            await events.append(db, notifier, row.id, [outcomes.define(row, event)])
        else:
            await events.enqueue(db, row.id, [dump_event(event)])


async def list_sessions(
    db: AsyncSession,
    *,
    limit: int,
    cursor: Cursor | None,
    order: Literal["asc", "desc"],
    agent_id: str | None,
    agent_version: int | None,
    statuses: Sequence[str] | None,
    include_archived: bool,
    ranges: dict[str, datetime],
    deployment_id: str | None = None,
) -> SessionPage:
    if agent_version is not None and agent_id is None:
        raise InvalidRequest("agent_version: only allowed together with agent_id")
    stmt = repository.list_query(
        agent_id=agent_id,
        agent_version=agent_version,
        statuses=statuses,
        include_archived=include_archived,
        ranges=ranges,
        deployment_id=deployment_id,
    )
    backwards = cursor is not None and cursor.direction == "prev"
    descending = (order == "desc") != backwards
    after = decode_time_key(cursor)
    rows = list(await repository.page(db, stmt, after=after, descending=descending, limit=limit + 1))
    more = len(rows) > limit
    rows = rows[:limit]
    if backwards:
        rows.reverse()
    data = [to_out(r, threads_usage=await thread_usages(db, r)) for r in rows]
    return SessionPage(data=data, **_page_links(rows, order, cursor, more, backwards))


async def render_list(raw: RawReads, *, limit: int, page: str | None, order: Literal["asc", "desc"]) -> bytes:
    """The body of GET /v1/sessions without filters: ``list_sessions``'s page as JSON, read with
    plain statements (no ORM instances). The page is read as (id, row_version, created_at); each
    session's JSON is kept by (id, row_version) (`app.sessions.rendering`), so only the rows
    without a kept rendering are read whole, in a second statement (a row deleted in between is
    left out), and a page only fills in the figures that move with the clock."""
    cursor = decode_cursor(page, order)
    backwards = cursor is not None and cursor.direction == "prev"
    descending = (order == "desc") != backwards
    after = decode_time_key(cursor)
    versions = await repository.shown_versions(raw, after=after, descending=descending, limit=limit + 1)
    more = len(versions) > limit
    versions = versions[:limit]
    if backwards:
        versions.reverse()
    kept = [_RENDERED.kept((id_, version)) for id_, version, _ in versions]
    missing = [v[0] for v, k in zip(versions, kept, strict=True) if k is None]
    rows = {row[0]: row for row in await repository.shown_rows(raw, missing)} if missing else {}
    now = utcnow()
    data = []
    for (id_, _, _), found in zip(versions, kept, strict=True):
        if found is not None:
            data.append(found.at(now))
            continue
        row = rows.get(id_)
        if row is None:  # deleted since the first read: left out
            continue
        shown, version = row[:-1], row[-1]
        threads = await repository.child_usages(raw, id_) if _RENDERED.is_multiagent(shown) else None
        data.append(_RENDERED.render(shown, now, threads, version=(id_, version)))
    keys = [(timestamp(v[2]), v[0]) for v in versions[:1] + versions[-1:]]
    return _page_body(data, keys, order, cursor, more, backwards)


def _page_body(
    data: list[bytes],
    keys: list[tuple[datetime | None, str]],
    order: Literal["asc", "desc"],
    cursor: Cursor | None,
    more: bool,
    backwards: bool,
) -> bytes:
    links = _page_links(
        [_Keyed(at, id_) for at, id_ in keys if at is not None], order, cursor, more, backwards
    )
    return b"".join(
        (b'{"data":[', b",".join(data), b'],"next_page":', to_json(links["next_page"]), b',"prev_page":',
         to_json(links["prev_page"]), b"}")
    )  # fmt: skip


_RENDERED = RenderedSessions()


@dataclass(frozen=True)
class _Keyed:
    created_at: datetime
    id: str


def _key(row: Session | SessionColumns | _Keyed) -> tuple[str, str]:
    return time_key(row.created_at, row.id)


def _page_links(
    rows: Sequence[Session | SessionColumns | _Keyed],
    order: Literal["asc", "desc"],
    cursor: Cursor | None,
    more: bool,
    backwards: bool,
) -> dict[str, str | None]:
    if not rows:
        return {"next_page": None, "prev_page": None}
    has_next = (not backwards and more) or backwards
    has_prev = (backwards and more) or (not backwards and cursor is not None)
    return {
        "next_page": encode_cursor(Cursor(order, _key(rows[-1]), "next")) if has_next else None,
        "prev_page": encode_cursor(Cursor(order, _key(rows[0]), "prev")) if has_prev else None,
    }


async def update(db: AsyncSession, notifier: Notifier, session_id: str, params: SessionUpdate) -> SessionOut:
    row = await load(db, session_id, for_update=True)
    if "vault_ids" in params.model_fields_set:
        raise InvalidRequest("vault_ids: updating vault_ids is not yet supported")
    if row.status == "terminated":
        raise InvalidRequest(f"Session {session_id} is terminated and cannot be updated")
    changed = _apply_update(row, params)
    if "budget" in params.model_fields_set and await budgets.update(db, row, params.budget):
        changed["budget"] = row.budget
        await _resume_after_budget(db, notifier, row)
    if len(changed) > 1:  # more than its type
        row.updated_at = utcnow()
        await events.append(db, notifier, row.id, [changed])
        await webhooks.emit(db, "session.updated", row.id)
    await db.flush()
    return to_out(row, threads_usage=await thread_usages(db, row))


async def _resume_after_budget(db: AsyncSession, notifier: Notifier, row: Session) -> None:
    """A raised or removed budget: threads paused on `budget_reached` go on (the worker checks
    the budget again and resumes those whose turn it cut)."""
    if await budgets.reached(db, row):
        return
    for paused in [row, *await repository.children(db, row.id, for_update=True)]:
        if paused.status == "idle" and paused.archived_at is None:
            transitions.request_run(db, notifier, paused)


def _apply_update(row: Session, params: SessionUpdate) -> EventRecord:
    """The update applied to the row; returns the `session.updated` event naming what changed."""
    changed: EventRecord = {"type": "session.updated"}
    fields = params.model_fields_set
    if "title" in fields and params.title != row.title:
        row.title = params.title
        changed["title"] = params.title
    if "metadata" in fields and params.metadata is not None:
        patched = patch_metadata(row.metadata_, params.metadata)
        if patched != row.metadata_:
            row.metadata_ = patched
            changed["metadata"] = patched
    if "agent" in fields and params.agent is not None:
        snapshot = _updated_agent(row, params)
        if snapshot != row.agent:
            row.agent = snapshot
            changed["agent"] = snapshot
    return changed


def _updated_agent(row: Session, params: SessionUpdate) -> SessionAgent:
    if row.status in ACTIVE_STATUSES:
        raise InvalidRequest(
            f"Session {row.id} is {row.status}; its agent can only be updated while idle. "
            "Send an interrupt first."
        )
    assert params.agent is not None
    given = {k: getattr(params.agent, k) for k in params.agent.model_fields_set}
    return agents.resolve_tools_update(row.agent, given)


async def archive(db: AsyncSession, notifier: Notifier, session_id: str) -> SessionOut:
    row = await load(db, session_id, for_update=True)
    if row.archived_at is not None:
        return to_out(row, threads_usage=await thread_usages(db, row))
    if row.status != "idle":
        raise InvalidRequest(
            f'Session {session_id} cannot be archived while its status is "{row.status}". '
            "Only pending or idle sessions may be archived."
        )
    now = utcnow()
    row.archived_at = now
    await workflow_runs.stop_all(db, notifier, row)  # runs still open end with their session
    await transitions.terminate(db, notifier, row)
    await threads.close_children(db, row)
    await work.stop_session_work(db, session_id)
    await webhooks.emit(db, "session.archived", session_id)
    return to_out(row, now, await thread_usages(db, row))


async def delete(db: AsyncSession, notifier: Notifier, session_id: str) -> SessionDeleted:
    row = await load(db, session_id, for_update=True)
    if row.status in ACTIVE_STATUSES:
        raise InvalidRequest(
            "Cannot delete session while it is running. "
            "Send an interrupt event or wait for the session to complete."
        )
    await files.delete_session_files(db, session_id)
    await work.stop_session_work(db, session_id)
    await webhooks.emit(db, "session.deleted", session_id)
    child_ids = [c.id for c in await repository.children(db, session_id)]
    await repository.delete_children(db, session_id)
    await workflow_runs.delete_for_session(db, session_id)
    await repository.delete(db, row)
    await db.flush()
    for log_id in [session_id, *child_ids]:  # thread streams end with their session
        after_commit(db, functools.partial(notifier.session_deleted, log_id))
    return SessionDeleted(id=session_id)


async def send_events(
    db: AsyncSession, notifier: Notifier, session_id: str, params: Sequence[Any]
) -> list[EventRecord]:
    row = await load(db, session_id, for_update=True)
    if row.archived_at is not None:
        raise Conflict(f"Session {session_id} is archived; it accepts no new events")
    if row.status == "terminated":
        raise InvalidRequest(f"Session {session_id} is terminated; it accepts no new events")
    if await budgets.reached(db, row):
        budgets.check_settle_only([str(getattr(p, "type", "")) for p in params])
    environment_type = await environments.config_type(db, row.environment_id)
    echoed = await accept_client_events(db, notifier, row, params, environment_type)
    if environment_type == "self_hosted" and any(e["type"] in QUEUED for e in echoed):
        # New input for a dormant session (no live work item): a worker must pick it up again.
        await work.enqueue_if_dormant(db, row.environment_id, row.id)
    return echoed


async def stream_start(
    conn: RawConnection, notifier: Notifier, session_id: str, last_event_id: str | None
) -> int:
    """Where a new stream starts reading the log (the replay rule in `app.events.stream`), read
    in plain statements on the driver (no ORM session, no instance); ``_stream_start`` for threads."""
    watermark = await repository.stream_seq(conn, session_id)
    if watermark is None:
        raise NotFound(f"Session {session_id} not found")
    if last_event_id:
        seq = _seq_named(last_event_id)
        if seq is None:
            seq = await events.raw_seq_of(conn, session_id, last_event_id)
        if seq is not None:
            return seq
    return max(watermark, notifier.delivered.get(session_id, 0))


async def _stream_start(db: AsyncSession, notifier: Notifier, row: Session, last_event_id: str | None) -> int:
    session_id = row.id
    if last_event_id:
        seq = _seq_named(last_event_id)
        if seq is None:
            seq = await events.seq_of(db, session_id, last_event_id)
        if seq is not None:
            return seq
    return max(row.stream_seq, notifier.delivered.get(session_id, 0))


def _seq_named(last_event_id: str) -> int | None:
    """A `Last-Event-ID` given as a position: ASCII digits (``str.isdigit`` also takes `²`, which
    ``int`` refuses), at most the largest position a log can hold (a larger one resumes after
    everything). None: an event id, looked up in the log."""
    if not (last_event_id.isascii() and last_event_id.isdigit()):
        return None
    # Past 19 digits it is past the largest (and `int` refuses strings over 4,300 digits).
    return INT64_MAX if len(last_event_id.lstrip("0")) > 19 else min(int(last_event_id), INT64_MAX)


# --- threads (see `threads`) ----------------------------------------------------------------------
async def list_threads(
    db: AsyncSession,
    session_id: str,
    *,
    limit: int,
    cursor: Cursor | None,
    statuses: Sequence[str] | None,
) -> ThreadPage:
    after = 0
    if cursor is not None:
        if len(cursor.key) != 1 or not isinstance(cursor.key[0], int):
            raise InvalidRequest("invalid page cursor")
        after = int(cursor.key[0])
    session = await load(db, session_id)
    return await threads.list_page(db, session, limit=limit, after=after, statuses=check_statuses(statuses))


async def get_thread(db: AsyncSession, session_id: str, thread_id: str) -> SessionThreadOut:
    return await threads.get(db, await load(db, session_id), thread_id)


async def archive_thread(
    db: AsyncSession, notifier: Notifier, session_id: str, thread_id: str
) -> SessionThreadOut:
    return await threads.archive(db, notifier, await load(db, session_id, for_update=True), thread_id)


async def thread_log_id(db: AsyncSession, session_id: str, thread_id: str) -> str:
    """The id of the log that holds a thread's events (the session's own for the primary)."""
    return (await threads.resolve(db, await load(db, session_id), thread_id)).id


async def thread_stream_start(
    db: AsyncSession, notifier: Notifier, session_id: str, thread_id: str, last_event_id: str | None
) -> tuple[str, int]:
    row = await threads.resolve(db, await load(db, session_id), thread_id)
    return row.id, await _stream_start(db, notifier, row, last_event_id)


async def save_stream_watermark(db: AsyncSession, session_id: str, seq: int) -> None:
    await repository.advance_stream_seq(db, session_id, seq)


async def live_ids(db: AsyncSession) -> set[str]:
    """Ids of every session that exists (sandboxes of any other session are orphans)."""
    return set(await repository.all_ids(db))


async def sandbox_needs(db: AsyncSession) -> dict[str, str]:
    """Session id -> environment id of every session that may still use its sandbox (all but
    the terminated): what `mas sandbox prune` keeps."""
    return dict(await repository.unterminated(db))


# --- resources (the session row holds them; see `resources`) ------------------------------------
async def add_resource(db: AsyncSession, session_id: str, raw: dict[str, JsonValue]) -> FileResource:
    row = await load(db, session_id, for_update=True)
    environment_type = await environments.config_type(db, row.environment_id)
    resource = await resources.add(db, row, raw, environment_type)
    row.updated_at = utcnow()
    return resource


async def list_resources(
    db: AsyncSession, session_id: str, limit: int | None, page: str | None
) -> ResourcePage:
    return resources.list_page(await load(db, session_id), limit, page)


async def get_resource(db: AsyncSession, session_id: str, resource_id: str) -> SessionResource:
    return resources.get(await load(db, session_id), resource_id)


async def update_resource(
    db: AsyncSession, session_id: str, resource_id: str, params: ResourceUpdate, repo_context: RepoContext
) -> SessionResource:
    row = await load(db, session_id, for_update=True)
    return resources.update(row, resource_id, params, repo_context)


async def delete_resource(db: AsyncSession, session_id: str, resource_id: str) -> ResourceDeleted:
    row = await load(db, session_id, for_update=True)
    deleted = await resources.delete(db, row, resource_id)
    row.updated_at = utcnow()
    return deleted


async def counts(db: AsyncSession) -> tuple[dict[str, int], int]:
    """Sessions by status, and how many are due to run with no worker on them (metrics)."""
    return await repository.count_by_status(db), await repository.count_runnable(db, utcnow())


async def trace_parent(db: AsyncSession, session_id: str) -> str | None:
    """The traceparent of the request that last asked the session to run (tracing)."""
    row = await repository.get(db, session_id)
    return row.trace_parent if row is not None else None
