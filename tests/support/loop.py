"""Driving real turns of the agent loop through the SDK: servers on their own database, agents
whose offline model follows directives, and bounded waits on the log and the stream.

A loop server gets a database of its own so no other test server's worker can claim its sessions
(a worker with other settings would change what the tests observe).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any

import anthropic

from tests.conftest import make_settings
from tests.support.clients import API_KEY, strict_async_client
from tests.support.databases import fresh_database as fresh_database
from tests.support.factories import MODEL as MODEL
from tests.support.factories import text
from tests.support.server import ServerThread
from tests.support.server import stop_tool_servers as stop_tool_servers

# How long a wait may take before the test fails instead of hanging. Not a speed bound: it is
# generous because the shared 2-core machines run several suites at once (30 s was seen to flake).
TIMEOUT = 120.0
Event = Any  # an SDK event model
TOOLSET: dict[str, Any] = {"type": "agent_toolset_20260401"}


def loop_server(backend: str, directory: Path, **overrides: object) -> Generator[ServerThread, None, None]:
    """A server with the embedded worker and the offline model, on a database of its own."""
    for url in fresh_database(backend, directory):
        settings = make_settings(
            url,
            sandbox_state_dir=directory / "sandbox",
            worker_poll_seconds=0.2,
            stream_poll_seconds=0.5,
            stream_heartbeat_seconds=1.0,
            **overrides,
        )
        server = ServerThread(settings).start()
        try:
            yield server
        finally:
            server.stop()
            stop_tool_servers(directory / "sandbox")


def sdk(server_url: str) -> anthropic.AsyncAnthropic:
    return strict_async_client(server_url, API_KEY)


# --- agents and sessions --------------------------------------------------------------------


def custom_tool(name: str = "lookup") -> dict[str, Any]:
    return {
        "type": "custom",
        "name": name,
        "description": "Look something up in the client's records.",
        "input_schema": {"type": "object", "properties": {"key": {"type": "string"}}},
    }


def toolset(*configs: dict[str, Any]) -> dict[str, Any]:
    return {**TOOLSET, "configs": list(configs)} if configs else dict(TOOLSET)


def always_ask(name: str = "bash") -> dict[str, Any]:
    return {"name": name, "permission_policy": {"type": "always_ask"}}


async def new_session(
    client: anthropic.AsyncAnthropic, *tools: dict[str, Any], system: str | None = None
) -> str:
    params: dict[str, Any] = {"name": "loop-agent", "model": MODEL, "tools": list(tools) or [TOOLSET]}
    if system is not None:
        params["system"] = system
    agent = await client.beta.agents.create(**params)
    environment = await client.beta.environments.create(name=f"env-{agent.id[-8:]}")
    session = await client.beta.sessions.create(agent=agent.id, environment_id=environment.id)
    return session.id


def message(value: str) -> dict[str, Any]:
    return {"type": "user.message", "content": [text(value)]}


async def send(client: anthropic.AsyncAnthropic, session_id: str, *events: dict[str, Any]) -> list[Event]:
    sent = await client.beta.sessions.events.send(session_id, events=list(events))  # type: ignore[arg-type]
    return list(sent.data or [])


# --- reading the log ------------------------------------------------------------------------


async def log(client: anthropic.AsyncAnthropic, session_id: str) -> list[Event]:
    return [e async for e in client.beta.sessions.events.list(session_id, limit=1000)]


def types(events: list[Event]) -> list[str]:
    return [e.type for e in events]


def of_type(events: list[Event], kind: str) -> list[Event]:
    return [e for e in events if e.type == kind]


def idles(events: list[Event]) -> list[Event]:
    return of_type(events, "session.status_idle")


def texts(events: list[Event]) -> list[str]:
    """The text of each `agent.message`, in order."""
    return ["".join(b.text for b in e.content if b.type == "text") for e in of_type(events, "agent.message")]


def result_text(event: Event) -> str:
    return "".join(b.text for b in event.content or [] if b.type == "text")


async def wait_for(
    client: anthropic.AsyncAnthropic, session_id: str, done: Callable[[list[Event]], bool]
) -> list[Event]:
    """Poll the log until `done(log)` holds; fail (never hang) after `TIMEOUT` seconds."""
    deadline = time.monotonic() + TIMEOUT
    while True:
        events = await log(client, session_id)
        if done(events):
            return events
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting on {session_id}; log: {types(events)}")
        await asyncio.sleep(0.05)


async def wait_idle(client: anthropic.AsyncAnthropic, session_id: str, count: int = 1) -> list[Event]:
    """The log once it holds `count` `session.status_idle` events."""
    return await wait_for(client, session_id, lambda events: len(idles(events)) >= count)


async def wait_type(client: anthropic.AsyncAnthropic, session_id: str, kind: str) -> list[Event]:
    return await wait_for(client, session_id, lambda events: kind in types(events))


async def turn(client: anthropic.AsyncAnthropic, session_id: str, prompt: str) -> list[Event]:
    """Send a message and return the log once that turn ended (the next idle)."""
    before = len(idles(await log(client, session_id)))
    await send(client, session_id, message(prompt))
    return await wait_idle(client, session_id, before + 1)


def stop_reason(idle: Event) -> dict[str, Any]:
    value: dict[str, Any] = idle.stop_reason.model_dump(exclude_none=True)
    return value


def assert_log_sane(events: list[Event]) -> None:
    """Ids unique, every processed event stamped, and timestamps never going backwards."""
    ids = [e.id for e in events]
    assert len(ids) == len(set(ids)), f"duplicate events: {types(events)}"
    stamps = [e.processed_at for e in events]
    assert all(s is not None for s in stamps)
    assert stamps == sorted(stamps)


def process_environment(database_url: str, directory: Path, *, lease_seconds: float) -> dict[str, str]:
    """Settings of a `python -m app serve|worker` child process on a shared database."""
    return {
        "MAS_DATABASE_URL": database_url,
        "MAS_API_KEYS": API_KEY,
        "MAS_AUTO_MIGRATE": "false",
        "MAS_MODEL_BACKEND": "offline",
        "MAS_SANDBOX_BACKEND": "local",
        "MAS_SANDBOX_STATE_DIR": str(directory / "sandbox"),
        "MAS_VAULT_KEY_FILE": str(directory / "vault.key"),
        "MAS_WORKER_LEASE_SECONDS": str(lease_seconds),
        "MAS_WORKER_POLL_SECONDS": "0.2",
        "MAS_RETRY_BASE_SECONDS": "0.05",
        "MAS_LOG_LEVEL": "warning",
        "MAS_LEDGER_VERIFY": "true",
    }


# --- multi-agent sessions -------------------------------------------------------------------


async def coordinated_session(client: anthropic.AsyncAnthropic, *names: str) -> tuple[str, dict[str, str]]:
    """A session whose agent coordinates agents called `names` (name -> agent id)."""
    members = {}
    for name in names:
        member = await client.beta.agents.create(name=name, model=MODEL, tools=[TOOLSET])  # type: ignore[list-item]
        members[name] = member.id
    coordinator = await client.beta.agents.create(
        name="lead",
        model=MODEL,
        tools=[TOOLSET],  # type: ignore[list-item]
        multiagent={"type": "coordinator", "agents": list(members.values())},
    )
    environment = await client.beta.environments.create(name=f"env-{coordinator.id[-8:]}")
    session = await client.beta.sessions.create(agent=coordinator.id, environment_id=environment.id)
    return session.id, members


def bash(command: str) -> str:
    return "/tool bash " + json.dumps({"command": command})


async def thread_log(client: anthropic.AsyncAnthropic, session_id: str, thread_id: str) -> list[Any]:
    page = client.beta.sessions.threads.events.list(thread_id, session_id=session_id, limit=1000)
    return [e async for e in page]


async def children(client: anthropic.AsyncAnthropic, session_id: str) -> list[Any]:
    listed = [t async for t in client.beta.sessions.threads.list(session_id)]
    return [t for t in listed if t.parent_thread_id is not None]
