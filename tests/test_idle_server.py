"""An idle server leaves the CPU alone: its loop services (worker claims, webhook sender,
deployment scheduler, dream runner, sweepers) sleep until the notifier wakes them or their long
safety poll comes, instead of polling the database several times a second; and the wake-ups alone
are enough to run a turn and deliver its webhooks (the safety polls here are an hour long)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app.shared.loops import LoopService
from tests.conftest import make_settings
from tests.support.databases import fresh_database
from tests.support.loop import message, sdk, wait_idle
from tests.support.server import ServerThread
from tests.webhooks.receiver import Receiver
from tests.webhooks.test_webhooks import events_about, new_session, register, wait_until

HOUR = 3600.0
EXPECTED = {"storage-sweeper", "webhook-dispatcher", "deployment-scheduler", "worker-claims", "dream-runner"}


@pytest.fixture
def own_database(backend: str, tmp_path: Path) -> Iterator[str]:
    """No other server writes here: whatever wakes this one is the test's doing."""
    yield from fresh_database(backend, tmp_path)


def services_of(server: ServerThread) -> dict[str, LoopService]:
    services: dict[str, LoopService] = server.app.state.services
    return services


async def test_an_idle_server_runs_each_service_once_in_seconds_not_five_times_a_second(
    own_database: str,
) -> None:
    # The defaults, with the dream runner on (the shared test servers turn it off).
    server = ServerThread(make_settings(own_database, dreams_poll_seconds=30.0)).start()
    try:
        services = services_of(server)
        assert set(services) >= EXPECTED
        await asyncio.sleep(3)  # nothing to do: a poller of 0.2 s would have run 15 rounds by now
        rounds = {name: service.rounds for name, service in services.items()}
        # Its first round at start (none for those that wait first), and nothing since.
        assert all(count <= 1 for count in rounds.values()), rounds
        assert rounds["worker-claims"] == 1 and rounds["webhook-dispatcher"] == 1
        assert all(service.failures == 0 for service in services.values())
    finally:
        server.stop()


async def test_wake_ups_alone_run_a_turn_and_deliver_its_webhooks(own_database: str) -> None:
    polls: dict[str, Any] = {
        "worker_poll_seconds": HOUR,
        "webhook_poll_seconds": HOUR,
        "deployment_poll_seconds": HOUR,
        "missed_wakeup_poll_seconds": HOUR,
    }
    server = ServerThread(make_settings(own_database, **polls)).start()
    receiver = Receiver().start()
    try:
        endpoint = await register(server.url, receiver.url, "session.created", "session.status_idled")
        async with sdk(server.url) as client:
            session_id = await new_session(client)
            await client.beta.sessions.events.send(session_id, events=[message("/say woken")])  # type: ignore[list-item]
            await wait_idle(client, session_id)

            async def both() -> list[Any]:
                seen = events_about(receiver, client, endpoint["signing_secret"], session_id)
                return seen if len(seen) >= 2 else []

            kinds = {event.data.type for event in await wait_until(both, "the session's webhooks")}
        assert {"session.created", "session.status_idled"} <= kinds
        assert services_of(server)["webhook-dispatcher"].failures == 0
    finally:
        receiver.stop()
        server.stop()
