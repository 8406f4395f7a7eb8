"""How many transactions the worker spends on a turn: decisions that only write are chained in one
transaction, and the decision after a recorded response or tool result is made in the transaction
that recorded it (see app/agent_loop/runner.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager

import anthropic
from sqlalchemy import event
from sqlalchemy.engine import Connection

from app.db.engine import Database
from tests.support.loop import new_session, of_type, result_text, stop_reason, texts, turn, types
from tests.support.server import ServerThread

SDK = anthropic.AsyncAnthropic


@contextmanager
def commits_of(database: Database, task_name: str) -> Iterator[list[str]]:
    """The commits made (on the writer engine) by the asyncio task called ``task_name``."""
    seen: list[str] = []

    def on_commit(_conn: Connection) -> None:
        task = asyncio.current_task()
        if task is not None and task.get_name() == task_name:
            seen.append(task_name)

    event.listen(database.engine.sync_engine, "commit", on_commit)
    try:
        yield seen
    finally:
        event.remove(database.engine.sync_engine, "commit", on_commit)


async def test_a_one_tool_turn_takes_four_worker_transactions(loop: SDK, loop_server: ServerThread) -> None:
    session_id = await new_session(loop)
    database: Database = loop_server.app.state.db
    with commits_of(database, f"session-{session_id}") as commits:  # the worker's task of the session
        events = await turn(loop, session_id, '/tool bash {"command": "echo hi"}')

    # Start running and open the request; record the response and start the call; record its
    # result and open the next request; record the answer, go idle and release the lease.
    assert len(commits) == 4
    assert types(events)[-3:] == ["session.thread_status_idle", "session.usage", "session.status_idle"]
    assert result_text(of_type(events, "agent.tool_result")[0]) == "hi"
    assert texts(events)[-1] == "Tool results:\nhi"
    assert stop_reason(of_type(events, "session.status_idle")[-1]) == {"type": "end_turn"}
    session = await loop.beta.sessions.retrieve(session_id)
    assert session.status == "idle"
