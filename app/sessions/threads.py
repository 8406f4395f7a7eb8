"""Threads of a multi-agent session: the primary thread (the session itself) and child threads.

A child thread is a session row with `parent_session_id` set: it has its own log, status, usage
and worker lease, so each thread is its own unit of work for the workers and recovers from a
crash the way a session does. It shares its session's sandbox, files and vaults (the loop runs
its calls in the session's sandbox). Its lifecycle events are written to its own log and
cross-posted to the session's (the primary stream); messages between threads appear as
`agent.thread_message_sent` on the sender's log and `agent.thread_message_received` on the
receiver's, and the receiver is woken to answer.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Literal, Required, TypedDict

from sqlalchemy.ext.asyncio import AsyncSession

from app.db.base import utcnow
from app.db.models import Session
from app.errors import InvalidRequest, NotFound
from app.events import service as events
from app.events.notifier import Notifier
from app.events.types import ContentBlock, EventRecord
from app.ids import new_id
from app.sessions import repository, transitions, workflow_runs
from app.sessions.schemas import public_usage
from app.sessions.thread_schemas import SessionThreadOut, ThreadPage, ThreadStats
from app.shared.agent_config import ExecutionIdentity, McpServer, ModelConfig, SessionAgent, SkillRef, Tool
from app.shared.pagination import Cursor, encode_cursor

# Child threads working at once in one session (documented limit; advisor threads are exempt).
MAX_ACTIVE_THREADS = 25
# The roster name of the advisor (a coordinator's `{type: "advisor"}` entry, or `advisor: enabled`).
ADVISOR_NAME = "anthropic.advisor"
BUSY = ("running", "rescheduling")

thread_id_of = transitions.thread_id_of


# --- the loop's side: creating threads, delivering messages, waiting on them -------------------


async def create_child(
    db: AsyncSession,
    notifier: Notifier,
    parent: Session,
    agent: SessionAgent,
    *,
    workflow_run_id: str | None = None,
) -> Session:
    """A new idle thread running `agent` (a predefined agent's full definition, an inline agent or
    the advisor), announced on the session's log. Threads of inline agents and of the advisor
    name their session's agent as their `agent_id`: they have no agent resource of their own."""
    saved = agent.get("type") == "agent"
    row = repository.new_row(
        id=new_id("sthr"),
        agent_id=str(agent["id"]) if saved else parent.agent_id,
        agent_version=int(agent["version"]) if saved else parent.agent_version,
        agent={**agent, "multiagent": None},  # one delegation level: a thread never delegates
        environment_id=parent.environment_id,
        vault_ids=list(parent.vault_ids),
        parent_session_id=parent.id,
        workflow_run_id=workflow_run_id,
    )
    repository.add(db, row)
    await db.flush()
    created: EventRecord = {
        "type": "session.thread_created",
        "session_thread_id": row.id,
        "agent_name": agent["name"],
        "workflow_run_id": workflow_run_id,
    }
    await events.append(db, notifier, parent.id, [created])
    return row


async def children_of(db: AsyncSession, session_id: str) -> Sequence[Session]:
    return await repository.children(db, session_id)


async def active_children(db: AsyncSession, session_id: str) -> int:
    """Child threads working now, which the thread limit counts (advisor threads are exempt)."""
    return sum(
        1 for row in await repository.children(db, session_id) if working(row) and not _is_advisor(row)
    )


def _is_advisor(row: Session) -> bool:
    return row.agent.get("type") == "advisor"


async def advisor_of(db: AsyncSession, session_id: str) -> Session | None:
    """The session's advisor thread, if one was started (the newest, should one be archived)."""
    found = [row for row in await repository.children(db, session_id, for_update=True) if _is_advisor(row)]
    return found[-1] if found else None


def working(row: Session) -> bool:
    return row.archived_at is None and row.status in BUSY


async def busy(db: AsyncSession, session_id: str) -> bool:
    """Whether any child thread (the advisor too) is working or about to (the coordinator waits)."""
    return any(working(row) for row in await repository.children(db, session_id))


async def child(
    db: AsyncSession, session_id: str, thread_id: str, *, for_update: bool = False
) -> Session | None:
    row = await repository.get(db, thread_id, for_update=for_update)
    return row if row is not None and row.parent_session_id == session_id else None


async def deliver(
    db: AsyncSession,
    notifier: Notifier,
    sender: Session,
    receiver: Session,
    content: Sequence[ContentBlock],
) -> None:
    """A message from one thread to another: on both logs; an idle receiver starts running (one
    waiting on its client takes the message up when it resumes)."""
    sent: EventRecord = {
        "type": "agent.thread_message_sent",
        "to_session_thread_id": thread_id_of(receiver),
        "content": list(content),
        "to_agent_name": receiver.agent.get("name", ""),
    }
    received: EventRecord = {
        "type": "agent.thread_message_received",
        "from_session_thread_id": thread_id_of(sender),
        "content": list(content),
        "from_agent_name": sender.agent.get("name", ""),
    }
    await events.append(db, notifier, sender.id, [sent])
    if receiver.status == "idle" and not receiver.pending_action_ids:
        # Working from now on: a coordinator waiting on its threads sees this one busy at once.
        await transitions.start_running(db, notifier, receiver)
    await events.append(db, notifier, receiver.id, [received])
    transitions.request_run(db, notifier, receiver)


async def parent_of(db: AsyncSession, row: Session) -> Session:
    """The session a thread belongs to (already locked by the thread's fence)."""
    assert row.parent_session_id is not None
    parent = await repository.get(db, row.parent_session_id, for_update=True)
    if parent is None:
        raise LookupError(f"thread {row.id}: its session {row.parent_session_id} is gone")
    return parent


# --- blocking events: cross-posted to the primary stream, answers routed back -----------------

ANSWER_KEYS = {
    "user.tool_confirmation": "tool_use_id",
    "user.tool_result": "tool_use_id",
    "user.custom_tool_result": "custom_tool_use_id",
}
Route = tuple[Session, str]  # the thread an answer goes to, and the id of the thread's own event


async def cross_post_blocking(
    db: AsyncSession, notifier: Notifier, thread: Session, event_ids: Sequence[str]
) -> None:
    """A child thread waits on its client: its blocking tool uses are copied to the primary stream
    with its `session_thread_id` (the copy records which event it stands for, so the client can
    answer either id on the session)."""
    parent = await parent_of(db, thread)
    copies = [_copy(record, thread.id) for record in await events.records_by_id(db, thread.id, event_ids)]
    await events.append(db, notifier, parent.id, copies)


def _copy(record: EventRecord, thread_id: str) -> EventRecord:
    """A thread's blocking tool use as its session's log shows it, naming the event it stands for."""
    copy = record.copy()  # with its own id, time and bookkeeping
    copy.pop("id", None)
    copy.pop("processed_at", None)
    copy["session_thread_id"] = thread_id
    copy["harness"] = {"origin": record["id"]}
    return copy


async def answer_routes(db: AsyncSession, session: Session, answer_ids: Sequence[str]) -> dict[str, Route]:
    """Answers sent to the session for its child threads' blocking tool uses: by the id of the
    cross-posted copy on the primary stream, or of the thread's own event."""
    if not answer_ids:
        return {}
    waiting = {
        pending: row
        for row in await repository.children(db, session.id, for_update=True)
        for pending in row.pending_action_ids
    }
    records = await events.records_by_id(db, session.id, answer_ids)
    origins = {r["id"]: r.get("harness", {}).get("origin") for r in records}
    routes: dict[str, Route] = {}
    for answer in answer_ids:
        own = origins.get(answer) or answer
        if own in waiting:
            routes[answer] = (waiting[own], own)
    return routes


async def deliver_answer(
    db: AsyncSession, notifier: Notifier, payload: EventRecord, route: Route
) -> list[EventRecord]:
    """An answer routed to a thread, written to its log as answering its own event."""
    thread, own = route
    answer = payload.copy()
    if ANSWER_KEYS[payload["type"]] == "custom_tool_use_id":
        answer["custom_tool_use_id"] = own
    else:
        answer["tool_use_id"] = own
    answer["session_thread_id"] = thread.id
    echoed = await events.append(db, notifier, thread.id, [answer])
    thread.pending_action_ids = [i for i in thread.pending_action_ids if i != own]
    return echoed


# --- interrupts --------------------------------------------------------------------------------


async def route_interrupt(
    db: AsyncSession, notifier: Notifier, session: Session, payload: EventRecord
) -> list[EventRecord] | None:
    """Queue a `user.interrupt` on the threads it names: none named, every working thread and
    the primary; a child's id, only that thread. Returns the echo when the primary does not take
    it (None: queue it on the session as usual)."""
    target = payload.get("session_thread_id")
    if target is not None and target != transitions.primary_thread_id(session.id):
        row = await child(db, session.id, str(target), for_update=True)
        if row is None:
            raise InvalidRequest(f"session_thread_id: {target} is not a thread of session {session.id}")
        return await _interrupt(db, notifier, row, payload)
    if target is None:
        for row in await repository.children(db, session.id, for_update=True):
            if working(row):
                await _interrupt(db, notifier, row, payload)
        await workflow_runs.stop_all(db, notifier, session)
    return None


async def interrupt(db: AsyncSession, notifier: Notifier, row: Session) -> None:
    """Stop a working child thread (its session's own decision, e.g. a workflow run ending)."""
    await _interrupt(db, notifier, row, {"type": "user.interrupt"})


async def _interrupt(
    db: AsyncSession, notifier: Notifier, row: Session, payload: EventRecord
) -> list[EventRecord]:
    echoed = await events.enqueue(db, row.id, [{**payload, "session_thread_id": row.id}])
    transitions.request_run(db, notifier, row)
    transitions.announce_interrupt(db, notifier, row)
    return echoed


async def close_children(db: AsyncSession, session: Session) -> None:
    """The session is archived: its threads end with it."""
    for row in await repository.children(db, session.id, for_update=True):
        if row.archived_at is None:
            row.archived_at = utcnow()
        row.status = "terminated"
        row.wake_at = None


# --- the API's side: list, retrieve, archive ---------------------------------------------------


def to_out(row: Session, session: Session, now: datetime | None = None) -> SessionThreadOut:
    now = now or utcnow()
    active = row.active_seconds + ((now - row.running_since).total_seconds() if row.running_since else 0.0)
    end = row.terminated_at or now
    child_row = row.parent_session_id is not None
    started = row.status != "idle" or row.running_since is not None or row.active_seconds > 0
    return SessionThreadOut(
        id=thread_id_of(row),
        session_id=session.id,
        agent=_public_agent(row.agent),
        status=row.status,
        parent_thread_id=transitions.primary_thread_id(session.id) if child_row else None,
        workflow_run_id=row.workflow_run_id,
        stats=_stats(active, (end - row.created_at).total_seconds()) if started else None,
        usage=public_usage(row.usage, active) if started else None,
        created_at=row.created_at,
        updated_at=row.updated_at,
        archived_at=row.archived_at,
    )


class ThreadAgent(TypedDict, total=False):
    """A thread's ``agent`` as the API shows it: the snapshot's public keys, or ``{type:
    "advisor", model}`` for the advisor."""

    type: Required[Literal["agent", "inline", "advisor"]]
    id: str
    version: int
    name: str
    description: str | None
    system: str | None
    model: ModelConfig | str
    tools: list[Tool]
    mcp_servers: list[McpServer]
    skills: list[SkillRef]
    execution_identity: ExecutionIdentity


def _public_agent(agent: SessionAgent) -> ThreadAgent:
    """The snapshot's public keys it has, in this order (no id or version for an inline agent;
    never its multiagent or metadata)."""
    if agent["type"] == "advisor":
        return {"type": "advisor", "model": agent["model"]["id"]}
    shown: ThreadAgent = {"type": agent["type"]}
    if agent["type"] != "inline":
        if "id" in agent:
            shown["id"] = agent["id"]
        if "version" in agent:
            shown["version"] = agent["version"]
    if "name" in agent:
        shown["name"] = agent["name"]
    if "description" in agent:
        shown["description"] = agent["description"]
    if "system" in agent:
        shown["system"] = agent["system"]
    if "model" in agent:
        shown["model"] = agent["model"]
    if "tools" in agent:
        shown["tools"] = agent["tools"]
    if "mcp_servers" in agent:
        shown["mcp_servers"] = agent["mcp_servers"]
    if "skills" in agent:
        shown["skills"] = agent["skills"]
    if "execution_identity" in agent:
        shown["execution_identity"] = agent["execution_identity"]
    return shown


def _stats(active: float, duration: float) -> ThreadStats:
    return ThreadStats(active_seconds=round(active, 3), duration_seconds=duration)


async def _threads(db: AsyncSession, session: Session) -> list[Session]:
    return [session, *await repository.children(db, session.id)]


async def resolve(db: AsyncSession, session: Session, thread_id: str, *, for_update: bool = False) -> Session:
    """The row whose log and status are the thread's (the session itself for the primary)."""
    if thread_id == transitions.primary_thread_id(session.id):
        return session
    row = await child(db, session.id, thread_id, for_update=for_update)
    if row is None:
        raise NotFound(f"Thread {thread_id} not found in session {session.id}")
    return row


async def get(db: AsyncSession, session: Session, thread_id: str) -> SessionThreadOut:
    return to_out(await resolve(db, session, thread_id), session)


async def list_page(
    db: AsyncSession, session: Session, *, limit: int, after: int, statuses: Sequence[str] | None
) -> ThreadPage:
    """Threads in creation order (the primary first); the cursor is a position in that order."""
    rows = [r for r in await _threads(db, session) if not statuses or r.status in statuses]
    page = rows[after : after + limit]
    more = after + limit < len(rows)
    next_page = encode_cursor(Cursor("asc", (after + limit,))) if more else None
    return ThreadPage(data=[to_out(r, session) for r in page], next_page=next_page)


async def archive(db: AsyncSession, notifier: Notifier, session: Session, thread_id: str) -> SessionThreadOut:
    row = await resolve(db, session, thread_id, for_update=True)
    if row is session:
        raise InvalidRequest("The primary thread cannot be archived; archive the session instead")
    if row.archived_at is not None:
        return to_out(row, session)
    if row.status != "idle":
        raise InvalidRequest(
            f'Thread {thread_id} cannot be archived while its status is "{row.status}"; '
            "only idle threads may be archived. Send an interrupt first."
        )
    row.archived_at = utcnow()
    await transitions.terminate(db, notifier, row)
    return to_out(row, session)
