"""The work-queue protocol through the SDK's own `beta.environments.work` resource, as a worker
authenticated with an environment key sees it."""

from __future__ import annotations

import asyncio
import base64
import json

import anthropic
import pytest

from tests.support.clients import bearer_async_client
from tests.support.server import ServerThread
from tests.work.conftest import SelfHosted

SDK = anthropic.AsyncAnthropic


def sessions_token(secret: str | None) -> str:
    assert secret is not None
    payload = json.loads(base64.urlsafe_b64decode(secret + "=" * (-len(secret) % 4)))
    token: str = payload["sessions_token"]
    return token


async def claim(env: SelfHosted, **params: object) -> anthropic.types.beta.environments.BetaSelfHostedWork:
    item = await env.worker.beta.environments.work.poll(env.environment_id, block_ms=999, **params)  # type: ignore[arg-type]
    assert item is not None
    return item


async def test_a_new_session_is_queued_and_walks_the_documented_states(
    env: SelfHosted, async_client: SDK
) -> None:
    work = env.worker.beta.environments.work
    session_id = await env.session(async_client)
    stats = await work.stats(env.environment_id)
    assert (stats.depth, stats.pending) == (1, 0)

    item = await claim(env, anthropic_worker_id="worker-a")
    assert (item.state, item.data.type, item.data.id) == ("queued", "session", session_id)
    assert sessions_token(item.secret).startswith("sk-mas-work-")
    stats = await work.stats(env.environment_id)
    assert (stats.depth, stats.pending, stats.workers_polling) == (0, 1, 1)
    assert stats.oldest_queued_at is not None

    acked = await work.ack(item.id, environment_id=env.environment_id)
    assert acked.state == "starting" and acked.acknowledged_at is not None and acked.secret is None
    beat = await work.heartbeat(
        item.id, environment_id=env.environment_id, expected_last_heartbeat="NO_HEARTBEAT"
    )
    assert (beat.state, beat.lease_extended, beat.ttl_seconds) == ("active", True, 90)
    again = await work.heartbeat(
        item.id,
        environment_id=env.environment_id,
        expected_last_heartbeat=beat.last_heartbeat,
        desired_ttl_seconds=60,
    )
    assert again.ttl_seconds == 60 and again.last_heartbeat != beat.last_heartbeat
    current = await work.retrieve(item.id, environment_id=env.environment_id)
    assert (
        current.state == "active"
        and current.started_at is not None
        and current.latest_heartbeat_at is not None
    )

    stopping = await work.stop(item.id, environment_id=env.environment_id)
    assert stopping.state == "stopping" and stopping.stop_requested_at is not None
    beat = await work.heartbeat(
        item.id, environment_id=env.environment_id, expected_last_heartbeat="anything"
    )
    assert beat.state == "stopping"  # not compared once stopping; the worker shuts down
    stopped = await work.stop(item.id, environment_id=env.environment_id, force=True)
    assert stopped.state == "stopped" and stopped.stopped_at is not None
    with pytest.raises(anthropic.ConflictError):
        await work.stop(item.id, environment_id=env.environment_id, force=True)


async def test_heartbeat_preconditions(env: SelfHosted, async_client: SDK) -> None:
    work = env.worker.beta.environments.work
    await env.session(async_client)
    item = await claim(env)
    await work.ack(item.id, environment_id=env.environment_id)
    first = await work.heartbeat(
        item.id, environment_id=env.environment_id, expected_last_heartbeat="NO_HEARTBEAT"
    )

    for wrong in ("NO_HEARTBEAT", "2020-01-01T00:00:00Z"):
        with pytest.raises(anthropic.PreconditionFailedError) as caught:
            await work.heartbeat(item.id, environment_id=env.environment_id, expected_last_heartbeat=wrong)
        assert caught.value.error_code == "heartbeat_precondition_failed"
        body = caught.value.body
        assert isinstance(body, dict)
        assert body["error"]["details"]["current_state"] == {
            "last_heartbeat": first.last_heartbeat,
            "lease_extended": False,
            "state": "active",
            "ttl_seconds": 90,
        }
    # A rejected beat changed nothing: the right value still extends the lease.
    ok = await work.heartbeat(
        item.id, environment_id=env.environment_id, expected_last_heartbeat=first.last_heartbeat
    )
    assert ok.lease_extended
    with pytest.raises(anthropic.BadRequestError):
        await work.heartbeat(item.id, environment_id=env.environment_id, desired_ttl_seconds=0)


async def test_a_lease_that_runs_out_goes_back_to_the_queue_and_cuts_the_old_worker_off(
    env: SelfHosted, async_client: SDK, mas_server: ServerThread
) -> None:
    work = env.worker.beta.environments.work
    session_id = await env.session(async_client)
    first = await claim(env)
    await work.ack(first.id, environment_id=env.environment_id)
    beat = await work.heartbeat(
        first.id,
        environment_id=env.environment_id,
        expected_last_heartbeat="NO_HEARTBEAT",
        desired_ttl_seconds=1,
    )
    old = bearer_async_client(mas_server.url, sessions_token(first.secret))
    assert (await old.beta.sessions.retrieve(session_id)).id == session_id
    await asyncio.sleep(1.5)  # the worker "died": no heartbeat within the TTL

    second = await claim(env)
    assert second.id == first.id and second.state == "queued"
    assert sessions_token(second.secret) != sessions_token(first.secret)
    with pytest.raises(anthropic.AuthenticationError):
        await old.beta.sessions.retrieve(session_id)
    with pytest.raises(anthropic.PreconditionFailedError):
        await work.heartbeat(
            first.id, environment_id=env.environment_id, expected_last_heartbeat=beat.last_heartbeat
        )
    await old.close()


async def test_an_unacknowledged_claim_is_reclaimed_after_reclaim_older_than_ms(
    env: SelfHosted, async_client: SDK
) -> None:
    work = env.worker.beta.environments.work
    await env.session(async_client)
    first = await claim(env)
    assert await work.poll(env.environment_id) is None  # claimed, not acked, younger than 5 s
    second = await claim(env, reclaim_older_than_ms=0)
    assert second.id == first.id
    acked = await work.ack(second.id, environment_id=env.environment_id)
    late = await work.ack(first.id, environment_id=env.environment_id)  # the first poller's late ack
    assert acked.state == late.state == "starting"


async def test_polling_takes_an_environment_key_and_validates_its_parameters(
    env: SelfHosted, async_client: SDK
) -> None:
    assert await env.worker.beta.environments.work.poll(env.environment_id, block_ms=50) is None
    with pytest.raises(anthropic.BadRequestError):
        await env.worker.beta.environments.work.poll(env.environment_id, block_ms=0)
    with pytest.raises(anthropic.BadRequestError):
        await env.worker.beta.environments.work.poll(env.environment_id, block_ms=1000)
    with pytest.raises(anthropic.PermissionDeniedError):
        await async_client.beta.environments.work.poll(env.environment_id)
    # Reading the queue is open to API keys too.
    assert (await async_client.beta.environments.work.stats(env.environment_id)).depth == 0


async def test_metadata_update_list_and_retrieve(env: SelfHosted, async_client: SDK) -> None:
    work = env.worker.beta.environments.work
    await env.session(async_client)
    await env.session(async_client)
    item = await claim(env)
    updated = await work.update(
        item.id, environment_id=env.environment_id, metadata={"pod": "a", "zone": "x"}
    )
    assert updated.metadata == {"pod": "a", "zone": "x"}
    updated = await work.update(item.id, environment_id=env.environment_id, metadata={"zone": None})
    assert updated.metadata == {"pod": "a"}
    listed = [w async for w in work.list(env.environment_id, limit=1)]
    assert len(listed) == 2 and all(w.secret is None for w in listed)
    assert (await work.retrieve(item.id, environment_id=env.environment_id)).metadata == {"pod": "a"}


async def test_a_dormant_session_is_queued_again_by_new_input(env: SelfHosted, async_client: SDK) -> None:
    work = env.worker.beta.environments.work
    session_id = await env.session(async_client)
    item = await claim(env)
    await work.ack(item.id, environment_id=env.environment_id)
    await work.stop(item.id, environment_id=env.environment_id, force=True)
    assert await work.poll(env.environment_id) is None

    await async_client.beta.sessions.events.send(
        session_id, events=[{"type": "user.message", "content": [{"type": "text", "text": "/say again"}]}]
    )
    again = await claim(env)
    assert again.id != item.id and again.data.id == session_id


async def test_archiving_a_session_stops_its_work(env: SelfHosted, async_client: SDK) -> None:
    work = env.worker.beta.environments.work
    held_session = await env.session(async_client)
    queued_session = await env.session(async_client)
    held = await claim(env)
    assert held.data.id == held_session  # oldest first
    await work.ack(held.id, environment_id=env.environment_id)

    await async_client.beta.sessions.archive(held_session)
    await async_client.beta.sessions.archive(queued_session)
    states = {w.data.id: w.state async for w in work.list(env.environment_id)}
    # The held item waits for its worker to confirm (its next heartbeat says `stopping`).
    assert states == {held_session: "stopping", queued_session: "stopped"}
