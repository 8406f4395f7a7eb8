"""Deployments through the SDK in strict mode: create/list/retrieve/update/archive/pause/unpause/run,
cron schedules in IANA zones, run records, slots missed while no server ran (one catch-up, within
the grace), and a one-minute schedule fired exactly once by two
server processes sharing PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anthropic
import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import models
from app.db.engine import Database
from tests.support.clients import API_KEY, strict_async_client
from tests.support.databases import fresh_database
from tests.support.factories import MODEL
from tests.support.loop import loop_server, message, process_environment, sdk
from tests.support.server import ServerProcess, ServerThread

SDK = anthropic.AsyncAnthropic


pytestmark = pytest.mark.slow  # run first in parallel runs (tests/conftest.py)


@pytest.fixture(scope="module")
def server(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    yield from loop_server(
        backend, tmp_path_factory.mktemp(f"deployments-{backend}"), deployment_poll_seconds=0.2
    )


@pytest.fixture
async def client(server: ServerThread) -> AsyncIterator[SDK]:
    async with sdk(server.url) as sdk_client:
        yield sdk_client


async def agent_and_environment(client: SDK) -> tuple[str, str]:
    agent = await client.beta.agents.create(name="deployed", model=MODEL)
    environment = await client.beta.environments.create(name="deployed")
    return agent.id, environment.id


def hello(text: str = "/say deployed hello") -> list[Any]:
    return [message(text)]


async def test_a_schedule_in_an_iana_zone_lists_its_upcoming_runs(client: SDK) -> None:
    agent_id, environment_id = await agent_and_environment(client)
    deployment = await client.beta.deployments.create(
        name="weekday mornings",
        agent=agent_id,
        environment_id=environment_id,
        initial_events=hello(),
        schedule={"type": "cron", "expression": "0 9 * * 1-5", "timezone": "America/New_York"},
        metadata={"team": "ops"},
    )
    assert deployment.status == "active" and deployment.paused_reason is None
    assert deployment.agent.id == agent_id and deployment.agent.version == 1
    assert deployment.schedule is not None
    upcoming = deployment.schedule.upcoming_runs_at or []
    assert len(upcoming) == 5 and upcoming == sorted(upcoming)
    for at in upcoming:  # 09:00 in New York is 14:00 UTC in winter, 13:00 in summer; weekdays only
        local = at.astimezone(__import__("zoneinfo").ZoneInfo("America/New_York"))
        assert (local.hour, local.minute) == (9, 0) and local.weekday() < 5

    paused = await client.beta.deployments.pause(deployment.id)
    assert (
        paused.status == "paused"
        and paused.paused_reason is not None
        and paused.paused_reason.type == "manual"
    )
    assert [d.id async for d in client.beta.deployments.list(status="paused")] == [deployment.id]
    resumed = await client.beta.deployments.unpause(deployment.id)
    assert resumed.status == "active" and resumed.paused_reason is None

    manual_only = await client.beta.deployments.update(deployment.id, schedule=None, name="manual now")
    assert manual_only.schedule is None and manual_only.name == "manual now"
    archived = await client.beta.deployments.archive(deployment.id)
    assert archived.archived_at is not None
    assert deployment.id not in [d.id async for d in client.beta.deployments.list()]
    assert deployment.id in [d.id async for d in client.beta.deployments.list(include_archived=True)]
    with pytest.raises(anthropic.BadRequestError):
        await client.beta.deployments.run(deployment.id)


async def test_run_now_creates_a_session_that_carries_the_deployment(client: SDK) -> None:
    agent_id, environment_id = await agent_and_environment(client)
    deployment = await client.beta.deployments.create(
        name="on demand",
        agent=agent_id,
        environment_id=environment_id,
        initial_events=hello(),
    )
    run = await client.beta.deployments.run(deployment.id)
    assert run.type == "deployment_run" and run.error is None and run.session_id is not None
    assert run.trigger_context.type == "manual" and run.deployment_id == deployment.id
    session = await client.beta.sessions.retrieve(run.session_id)
    assert session.deployment_id == deployment.id
    events = [e async for e in client.beta.sessions.events.list(run.session_id)]
    assert "user.message" in [e.type for e in events]  # the initial events were sent
    assert [s.id async for s in client.beta.sessions.list(deployment_id=deployment.id)] == [run.session_id]
    assert (await client.beta.deployment_runs.retrieve(run.id)).session_id == run.session_id
    assert [r.id async for r in client.beta.deployment_runs.list(deployment_id=deployment.id)] == [run.id]


async def test_a_run_of_an_archived_agent_records_the_error(client: SDK) -> None:
    agent_id, environment_id = await agent_and_environment(client)
    deployment = await client.beta.deployments.create(
        name="doomed",
        agent=agent_id,
        environment_id=environment_id,
        initial_events=hello(),
    )
    await client.beta.agents.archive(agent_id)
    run = await client.beta.deployments.run(deployment.id)
    assert run.session_id is None and run.error is not None and run.error.type == "agent_archived_error"


async def test_bad_deployments_are_4xx(client: SDK) -> None:
    agent_id, environment_id = await agent_and_environment(client)
    base: dict[str, Any] = {
        "name": "bad",
        "agent": agent_id,
        "environment_id": environment_id,
        "initial_events": hello(),
    }
    schedules: list[Any] = [
        {"type": "cron", "expression": "0 0 L * *", "timezone": "UTC"},
        {"type": "cron", "expression": "* * * * * *", "timezone": "UTC"},
        {"type": "cron", "expression": "@daily", "timezone": "UTC"},
        {"type": "cron", "expression": "0 9 * * *", "timezone": "Mars/Olympus_Mons"},
    ]
    for schedule in schedules:
        with pytest.raises(anthropic.BadRequestError):
            await client.beta.deployments.create(**base, schedule=schedule)
    with pytest.raises(anthropic.BadRequestError):
        await client.beta.deployments.create(**{**base, "initial_events": []})
    with pytest.raises(anthropic.NotFoundError):
        await client.beta.deployments.create(**{**base, "agent": "agent_missing"})
    with pytest.raises(anthropic.NotFoundError):
        await client.beta.deployments.retrieve("depl_missing")


async def wait_for_runs(client: SDK, deployment_id: str, count: int, within: float) -> list[Any]:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        runs = [r async for r in client.beta.deployment_runs.list(deployment_id=deployment_id)]
        if len(runs) >= count:
            return runs
        await asyncio.sleep(0.5)
    raise AssertionError(f"no {count} runs of {deployment_id} within {within} s")


@pytest.fixture
def pg_database(tmp_path: Path) -> Iterator[str]:
    """A PostgreSQL database of this test alone (the cross-process claim is PostgreSQL's)."""
    yield from fresh_database("postgres", tmp_path)


async def test_a_one_minute_schedule_fires_once_per_slot_across_two_processes_on_postgres(
    pg_database: str, tmp_path: Path
) -> None:
    env = {
        # The default safety poll: both schedulers sleep until the slot falls due, then race for it.
        **process_environment(pg_database, tmp_path, lease_seconds=5),
        "MAS_DEPLOYMENT_MAX_JITTER_SECONDS": "0",
    }
    first = await asyncio.to_thread(ServerProcess(env).start)
    second = await asyncio.to_thread(ServerProcess(env).start)
    try:
        async with strict_async_client(first.url, API_KEY) as client:
            agent_id, environment_id = await agent_and_environment(client)
            deployment = await client.beta.deployments.create(
                name="every minute",
                agent=agent_id,
                environment_id=environment_id,
                initial_events=hello(),
                schedule={"type": "cron", "expression": "* * * * *", "timezone": "Europe/Berlin"},
            )
            assert deployment.schedule is not None and deployment.schedule.upcoming_runs_at
            slot = deployment.schedule.upcoming_runs_at[0]
            (run,) = await wait_for_runs(client, deployment.id, 1, within=120)
            await asyncio.sleep(3)  # the losing scheduler had its turn at the slot meanwhile
            runs = [r async for r in client.beta.deployment_runs.list(deployment_id=deployment.id)]
            slots = {getattr(r.trigger_context, "scheduled_at", None) for r in runs}
            assert len(slots) == len(runs)  # one per slot
            assert run.trigger_context.type == "schedule" and run.trigger_context.scheduled_at == slot
            assert run.session_id is not None and run.error is None
            assert datetime.now(UTC) - slot < timedelta(minutes=2)
            current = await client.beta.deployments.retrieve(deployment.id)
            assert current.schedule is not None and current.schedule.last_run_at is not None
            session = await client.beta.sessions.retrieve(run.session_id)
            assert session.deployment_id == deployment.id
    finally:
        await asyncio.to_thread(first.stop)
        await asyncio.to_thread(second.stop)


@contextlib.asynccontextmanager
async def database_of(server: ServerThread) -> AsyncIterator[AsyncSession]:
    db = Database(server.settings.database_url)
    try:
        async with db.unit_of_work() as session:
            yield session
    finally:
        await db.dispose()


async def backdate_next_slot(server: ServerThread, deployment_id: str, slot: datetime) -> None:
    """As if no server had run since ``slot``: the scheduler finds the slot passed (the test's
    stand-in for hours of downtime)."""
    async with database_of(server) as session:
        row = models.Deployment
        await session.execute(update(row).where(row.id == deployment_id).values(next_slot_at=slot))


async def next_slot(server: ServerThread, deployment_id: str) -> datetime | None:
    async with database_of(server) as session:
        row = await session.get(models.Deployment, deployment_id)
        assert row is not None
        slot = row.next_slot_at
        return slot.replace(tzinfo=UTC) if slot is not None and slot.tzinfo is None else slot


async def test_slots_missed_while_no_server_ran_are_made_up_once_within_the_grace(
    client: SDK, server: ServerThread
) -> None:
    """README "Missed slots": only the latest missed slot fires, once, and only if it is no older
    than MAS_DEPLOYMENT_MISSED_GRACE_SECONDS; the schedule then carries on from now."""
    agent_id, environment_id = await agent_and_environment(client)
    started = datetime.now(UTC)
    recent = await client.beta.deployments.create(
        name="every half hour",
        agent=agent_id,
        environment_id=environment_id,
        initial_events=hello(),
        schedule={"type": "cron", "expression": "*/30 * * * *", "timezone": "UTC"},
    )
    # A yearly slot two hours ago: missed, and older than the grace (an hour).
    old = (started - timedelta(hours=2)).replace(second=0, microsecond=0)
    assert server.settings.deployment_missed_grace_seconds < 2 * 3600
    yearly = await client.beta.deployments.create(
        name="anniversary",
        agent=agent_id,
        environment_id=environment_id,
        initial_events=hello(),
        schedule={
            "type": "cron",
            "expression": f"{old.minute} {old.hour} {old.day} {old.month} *",
            "timezone": "UTC",
        },
    )
    latest = started.replace(minute=started.minute - started.minute % 30, second=0, microsecond=0)
    await backdate_next_slot(server, recent.id, latest - timedelta(hours=5))  # 10 slots missed
    await backdate_next_slot(server, yearly.id, old)

    runs = await wait_for_runs(client, recent.id, 1, within=60)
    made_up = [r for r in runs if r.trigger_context.scheduled_at < started]
    assert [r.trigger_context.scheduled_at for r in made_up] == [latest]  # one, the latest slot
    assert made_up[0].session_id is not None and made_up[0].error is None
    moved_on = await next_slot(server, recent.id)
    assert moved_on is not None and moved_on > started

    async def skipped() -> datetime | None:
        deadline = time.monotonic() + 60
        slot = await next_slot(server, yearly.id)
        while slot is not None and slot <= started and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
            slot = await next_slot(server, yearly.id)
        return slot

    assert await skipped() == old.replace(year=old.year + 1)
    # Moving the slot on and recording a run are one transaction: it was skipped, not late.
    assert [r async for r in client.beta.deployment_runs.list(deployment_id=yearly.id)] == []
