"""What creating a session costs the database: every client of a turn starts with one, so a
statement it does not need is paid on every session (issue 10)."""

from __future__ import annotations

from contextlib import AbstractContextManager

import anthropic
import httpx

from app.db.engine import Database
from tests.support.factories import user_message
from tests.support.statements import recorded_statements
from tests.support.turns import InProcessWorker


def statements_about(database: Database, table: str) -> AbstractContextManager[list[str]]:
    """The statements naming ``table`` (or any table whose name starts so) that the database runs
    while the block does."""
    return recorded_statements(database, lambda statement, _parameters: f" {table}" in statement)


async def test_a_session_create_reads_no_vault_and_the_agent_and_webhook_endpoints_once(
    manual_async_client: anthropic.AsyncAnthropic, manual_http: httpx.AsyncClient, producer: InProcessWorker
) -> None:
    agent = await manual_async_client.beta.agents.create(name="create-statements", model="claude-sonnet-4-6")
    environment = await manual_async_client.beta.environments.create(name="create-statements")
    body = {"agent": agent.id, "environment_id": environment.id, "initial_events": [user_message("hi")]}
    with (
        statements_about(producer.database, "vaults") as vaults,
        statements_about(producer.database, "webhook_endpoints") as endpoints,
        statements_about(producer.database, "agent") as agents,
    ):
        created = await manual_http.post("/v1/sessions", json=body)
    assert created.status_code == 200 and created.json()["status"] == "running"
    assert vaults == []
    # It emits session.created and session.status_running: one read of the endpoints serves both.
    assert len(endpoints) == 1
    # The agent and its latest version, read together (their snapshot goes into the session row).
    assert len([s for s in agents if s.startswith("SELECT")]) == 1
