"""The orchestration tools of a multi-agent agent (`list_agents`, `send_to_agent`,
`consult_advisor`, `run_workflow`, `stop_workflow`), run by the server.

`send_to_agent` starts a thread of a predefined agent, or of an inline agent the caller defines
in the call (when its `multiagent` allows inline agents), or writes to a thread it started; each
call runs in its own transaction, fenced on the caller's lease; the thread then runs as its own
unit of work. `consult_advisor` writes to the session's advisor thread (created on first use; a
model with no tools, exempt from the thread limit). A thread's final reply comes back to its
coordinator as `agent.thread_message_received` (see `reply_to_parent`), which wakes the
coordinator for another model request.
"""

from __future__ import annotations

from pydantic import JsonValue
from sqlalchemy.ext.asyncio import AsyncSession

from app.agent_loop import tools, workflow
from app.agent_loop.deps import LoopDeps
from app.agent_loop.inline_agents import Refused, advisor_agent, inline_agent
from app.db.models import Session
from app.events.notifier import Notifier
from app.events.types import ContentBlock, EventRecord, harness_of
from app.sessions import leases, threads
from app.sessions.leases import Claim
from app.shared.agent_config import SessionAgent

NO_REPLY = "(The thread ended its turn without a text reply.)"


async def execute(deps: LoopDeps, claim: Claim, use: EventRecord) -> EventRecord:
    """The `agent.tool_result` of one orchestration call."""
    tool_input = use.get("input") or {}
    try:
        async with deps.database.unit_of_work() as db:
            row = await leases.fence(db, claim)
            text, is_error = await _run(db, deps.notifier, row, use["name"], tool_input)
    except Refused as refused:
        text, is_error = str(refused), True
    return {
        "type": "agent.tool_result",
        "tool_use_id": use["id"],
        "content": [{"type": "text", "text": text}],
        "is_error": is_error,
    }


async def _run(
    db: AsyncSession,
    notifier: Notifier,
    row: Session,
    name: str,
    tool_input: dict[str, JsonValue],  # a tool\'s input, chosen by the model
) -> tuple[str, bool]:
    """The call's result text and whether it is an error (a `Refused` rolls the call back; a
    refused workflow plan is committed with its `workflow_run.error`)."""
    if name == "run_workflow":
        return await workflow.start(db, notifier, row, tool_input)
    if name == "stop_workflow":
        return await workflow.stop(db, notifier, row, tool_input)
    if name == "list_agents":
        return await _list_agents(db, row), False
    if name == "consult_advisor":
        return await _consult(db, notifier, row, tool_input), False
    return await _send(db, notifier, row, tool_input), False


def _predefined(agent: SessionAgent) -> list[SessionAgent]:
    found = tools.delegation(agent)
    return list(found["predefined_agents"]) if found else []


async def _list_agents(db: AsyncSession, row: Session) -> str:
    lines = ["Agents you can delegate to:"]
    for agent in _predefined(row.agent):
        description = f": {agent['description']}" if agent.get("description") else ""
        lines.append(f"- {agent['name']}{description}")
    if tools.inline_allowed(row.agent):
        lines.append("- (an inline agent you define in send_to_agent's `inline_agent`)")
    if tools.advisor_model(row.agent) is not None:
        lines.append(f"- {threads.ADVISOR_NAME}: your advisor (consult_advisor)")
    workflows = tools.delegation(row.agent, "workflows")
    if workflows is not None:
        lines.append("Agents your workflow runs' tasks can name (run_workflow):")
        lines += [f"- {a['name']}" for a in workflows["predefined_agents"]]
        if tools.inline_allowed(row.agent, "workflows"):
            lines.append("- (inline agents the plan defines)")
    started = await threads.children_of(db, row.id)
    if started:
        lines.append("Threads you started:")
        lines += [
            f"- {t.id} ({t.agent.get('name')}, {'archived' if t.archived_at else t.status})" for t in started
        ]
    return "\n".join(lines)


def _message(tool_input: dict[str, JsonValue], key: str = "message") -> str:
    message = tool_input.get(key)
    if not isinstance(message, str) or not message.strip():
        raise Refused(f"`{key}` is required: the task or follow-up to send")
    return message


async def _send(
    db: AsyncSession,
    notifier: Notifier,
    row: Session,
    tool_input: dict[str, JsonValue],  # a tool\'s input, chosen by the model
) -> str:
    message = _message(tool_input)
    thread_id = tool_input.get("thread_id")
    if thread_id:
        target = await threads.child(db, row.id, str(thread_id), for_update=True)
        if target is None:
            raise Refused(f"thread {thread_id} is not a thread you started")
        if target.archived_at is not None:
            raise Refused(f"thread {thread_id} is archived")
    elif tool_input.get("agent") == threads.ADVISOR_NAME and tools.advisor_model(row.agent):
        target = await _advisor_thread(db, notifier, row)
    else:
        target = await _new_thread(db, notifier, row, _thread_agent(row.agent, tool_input))
    await threads.deliver(db, notifier, row, target, [{"type": "text", "text": message}])
    return (
        f"Sent to thread {target.id} (agent {target.agent.get('name')}). It works in parallel with "
        "you; its reply will arrive as a message from that thread."
    )


def _thread_agent(
    agent: SessionAgent,
    tool_input: dict[str, JsonValue],  # a tool\'s input, chosen by the model
) -> SessionAgent:
    """The definition a new thread runs: a predefined agent named in `agent`, or `inline_agent`."""
    inline, name = tool_input.get("inline_agent"), tool_input.get("agent")
    if inline is not None:
        if name is not None:
            raise Refused("give either `agent` or `inline_agent`, not both")
        if not tools.inline_allowed(agent):
            raise Refused("inline agents are disabled for this agent; name one from list_agents")
        return inline_agent(agent, inline)
    predefined = _predefined(agent)
    found = next((a for a in predefined if name in (a.get("name"), a.get("id"))), None)
    if found is None:
        names = ", ".join(str(a.get("name")) for a in predefined) or "none"
        raise Refused(f"no agent named {name!r} to delegate to (agents: {names})")
    return found


async def _new_thread(db: AsyncSession, notifier: Notifier, row: Session, agent: SessionAgent) -> Session:
    if await threads.active_children(db, row.id) >= threads.MAX_ACTIVE_THREADS:
        raise Refused(
            f"{threads.MAX_ACTIVE_THREADS} threads are already working; wait for a reply or send "
            "a follow-up to one of them (thread_id)"
        )
    return await threads.create_child(db, notifier, row, agent)


async def _advisor_thread(db: AsyncSession, notifier: Notifier, row: Session) -> Session:
    """The session's advisor thread: one per session, keeping its own history between questions."""
    model = tools.advisor_model(row.agent)
    found = await threads.advisor_of(db, row.id)
    if found is not None and found.archived_at is None:
        return found
    assert model is not None
    return await threads.create_child(db, notifier, row, advisor_agent(row.agent, model))


async def _consult(
    db: AsyncSession,
    notifier: Notifier,
    row: Session,
    tool_input: dict[str, JsonValue],  # a tool\'s input, chosen by the model
) -> str:
    if row.parent_session_id is not None:
        raise Refused("only the session's primary thread can consult the advisor")
    question = _message(tool_input, "question")
    target = await _advisor_thread(db, notifier, row)
    if target.status != "idle":
        raise Refused("the advisor is still answering your previous question; wait for its reply")
    await threads.deliver(db, notifier, row, target, [{"type": "text", "text": question}])
    return f"Asked the advisor (thread {target.id}); its answer will arrive as a message from that thread."


async def reply_to_parent(
    db: AsyncSession, notifier: Notifier, row: Session, response: EventRecord | None
) -> None:
    """A thread's turn ended: its final text goes back to the coordinator (and, for a thread of a
    workflow run, to the run, which may move on to its next phase)."""
    said = [] if response is None else harness_of(response).get("content") or []
    content: list[ContentBlock] = [
        {"type": "text", "text": b["text"]} for b in said if b.get("type") == "text" and b.get("text")
    ] or [{"type": "text", "text": NO_REPLY}]
    parent = await threads.parent_of(db, row)
    await threads.deliver(db, notifier, row, parent, content)
    if row.workflow_run_id is not None:
        await workflow.thread_replied(db, notifier, row, parent, content)
