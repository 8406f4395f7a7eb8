"""The coordinator's orchestration tools (`list_agents`, `send_to_agent`), run by the server.

`send_to_agent` starts a thread of a roster agent (or writes to one the coordinator started) in
its own transaction, fenced on the coordinator's lease; the thread then runs as its own unit of
work. A thread's final reply comes back to its coordinator as `agent.thread_message_received`
(see `reply_to_parent`), which wakes the coordinator for another model request.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.agent_loop.deps import LoopDeps
from app.db.models import Session
from app.events.notifier import Notifier
from app.sessions import leases, threads
from app.sessions.leases import Claim

Record = dict[str, Any]
NO_REPLY = "(The thread ended its turn without a text reply.)"


class _Refused(Exception):
    """The call cannot be carried out; its message is the tool's error result."""


async def execute(deps: LoopDeps, claim: Claim, use: Record) -> Record:
    """The `agent.tool_result` of one orchestration call."""
    tool_input = use.get("input") or {}
    try:
        async with deps.database.unit_of_work() as db:
            row = await leases.fence(db, claim)
            if use["name"] == "list_agents":
                text = await _list_agents(db, row)
            else:
                text = await _send(db, deps.notifier, row, tool_input)
        is_error = False
    except _Refused as refused:
        text, is_error = str(refused), True
    return {
        "type": "agent.tool_result",
        "tool_use_id": use["id"],
        "content": [{"type": "text", "text": text}],
        "is_error": is_error,
    }


async def _list_agents(db: AsyncSession, row: Session) -> str:
    lines = ["Agents you can delegate to:"]
    for agent in threads.roster(row.agent):
        description = f": {agent['description']}" if agent.get("description") else ""
        lines.append(f"- {agent['name']}{description}")
    started = await threads.children_of(db, row.id)
    if started:
        lines.append("Threads you started:")
        lines += [
            f"- {t.id} ({t.agent.get('name')}, {'archived' if t.archived_at else t.status})" for t in started
        ]
    return "\n".join(lines)


async def _send(db: AsyncSession, notifier: Notifier, row: Session, tool_input: Record) -> str:
    message = tool_input.get("message")
    if not isinstance(message, str) or not message.strip():
        raise _Refused("`message` is required: the task or follow-up to send")
    thread_id = tool_input.get("thread_id")
    if thread_id:
        target = await threads.child(db, row.id, str(thread_id), for_update=True)
        if target is None:
            raise _Refused(f"thread {thread_id} is not a thread you started")
        if target.archived_at is not None:
            raise _Refused(f"thread {thread_id} is archived")
    else:
        target = await _new_thread(db, notifier, row, tool_input.get("agent"))
    await threads.deliver(db, notifier, row, target, [{"type": "text", "text": message}])
    return (
        f"Sent to thread {target.id} (agent {target.agent.get('name')}). It works in parallel with "
        "you; its reply will arrive as a message from that thread."
    )


async def _new_thread(db: AsyncSession, notifier: Notifier, row: Session, name: Any) -> Session:
    roster = threads.roster(row.agent)
    agent = next((a for a in roster if name in (a.get("name"), a.get("id"))), None)
    if agent is None:
        names = ", ".join(str(a.get("name")) for a in roster)
        raise _Refused(f"no agent named {name!r} to delegate to (agents: {names})")
    if await threads.active_children(db, row.id) >= threads.MAX_ACTIVE_THREADS:
        raise _Refused(
            f"{threads.MAX_ACTIVE_THREADS} threads are already working; wait for a reply or send "
            "a follow-up to one of them (thread_id)"
        )
    return await threads.create_child(db, notifier, row, agent)


async def reply_to_parent(
    db: AsyncSession, notifier: Notifier, row: Session, response: Record | None
) -> None:
    """A thread's turn ended: its final text goes back to the coordinator."""
    content = [
        {"type": "text", "text": b["text"]}
        for b in ((response or {}).get("_content") or [])
        if b.get("type") == "text" and b.get("text")
    ] or [{"type": "text", "text": NO_REPLY}]
    parent = await threads.parent_of(db, row)
    await threads.deliver(db, notifier, row, parent, content)
