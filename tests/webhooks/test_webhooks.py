"""Webhooks end to end: endpoints registered through the API and the CLI, thin payloads signed so
that the SDK's `client.beta.webhooks.unwrap` verifies them, received by a server the test starts
on loopback; redelivery after a receiver outage and after a server restart; auto-disable."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import pytest

from tests.conftest import make_settings
from tests.support.clients import API_KEY
from tests.support.databases import fresh_database
from tests.support.factories import MODEL
from tests.support.loop import message, sdk
from tests.support.server import ServerThread
from tests.webhooks.receiver import Receiver

HEADERS = {"x-api-key": API_KEY}
WAIT = 60.0
# Short retries; the sender's safety poll stays at its default: queued deliveries wake it and
# retries are sent when they fall due.
FAST = {
    "webhook_retry_base_seconds": 0.2,
    "webhook_retry_max_seconds": 1.0,
    "webhook_max_attempts": 1000,
}


pytestmark = pytest.mark.slow  # run first in parallel runs (tests/conftest.py)


def webhook_server(url: str, **overrides: object) -> ServerThread:
    return ServerThread(make_settings(url, **{**FAST, **overrides})).start()


@pytest.fixture(scope="module")
def database(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from fresh_database(backend, tmp_path_factory.mktemp(f"webhooks-{backend}"))


@pytest.fixture(scope="module")
def server(database: str) -> Iterator[ServerThread]:
    running = webhook_server(database)
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
async def client(server: ServerThread) -> AsyncIterator[anthropic.AsyncAnthropic]:
    async with sdk(server.url) as sdk_client:
        yield sdk_client


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    hooks = Receiver()
    try:
        yield hooks
    finally:
        hooks.stop()


async def register(base_url: str, url: str, *events: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=base_url, headers=HEADERS, timeout=30) as http:
        response = await http.post("/v1/webhooks", json={"url": url, "enabled_events": list(events)})
    assert response.status_code == 200, response.text
    endpoint: dict[str, Any] = response.json()
    return endpoint


async def deliveries(base_url: str, endpoint_id: str) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(base_url=base_url, headers=HEADERS, timeout=30) as http:
        response = await http.get(f"/v1/webhooks/{endpoint_id}/deliveries", params={"limit": 100})
    assert response.status_code == 200, response.text
    data: list[dict[str, Any]] = response.json()["data"]
    return data


async def wait_until(check: Callable[[], Any], what: str) -> Any:
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        value = await check()
        if value:
            return value
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


async def new_session(client: anthropic.AsyncAnthropic, *initial: str) -> str:
    agent = await client.beta.agents.create(name="hooked", model=MODEL)
    environment = await client.beta.environments.create(name="hooked")
    session = await client.beta.sessions.create(
        agent=agent.id,
        environment_id=environment.id,
        initial_events=[message(text) for text in initial],  # type: ignore[misc]
    )
    return session.id


def events_about(
    receiver: Receiver, client: anthropic.AsyncAnthropic, secret: str, object_id: str
) -> list[Any]:
    """Every delivery about ``object_id``, verified with the SDK (a bad signature raises)."""
    verified = [client.beta.webhooks.unwrap(r.body, headers=r.headers, key=secret) for r in receiver.received]
    return [e for e in verified if e.data.id == object_id]


async def test_deliveries_verify_with_the_sdk_and_carry_thin_payloads(
    server: ServerThread, client: anthropic.AsyncAnthropic, receiver: Receiver
) -> None:
    receiver.start()
    endpoint = await register(
        server.url, receiver.url, "session.created", "session.status_run_started", "session.status_idled"
    )
    assert endpoint["signing_secret"].startswith("whsec_") and endpoint["state"] == "enabled"
    session_id = await new_session(client, "/say hello")

    async def all_three() -> list[Any] | None:
        got = events_about(receiver, client, endpoint["signing_secret"], session_id)
        return got if len(got) >= 3 else None

    got = await wait_until(all_three, "three session webhooks")
    assert sorted(e.data.type for e in got) == [
        "session.created",
        "session.status_idled",
        "session.status_run_started",
    ]
    first = got[0]
    assert first.type == "event" and first.id.startswith("wevt_")
    assert first.data.organization_id and first.data.workspace_id
    raw = json.loads(receiver.received[0].body)
    assert set(raw) == {"type", "id", "created_at", "data"}  # thin: no session body
    with pytest.raises(Exception, match=r"(?i)signature"):
        client.beta.webhooks.unwrap(
            receiver.received[0].body, headers=receiver.received[0].headers, key="whsec_" + "A" * 44
        )

    log = await deliveries(server.url, endpoint["id"])
    mine = [d for d in log if d["status"] == "delivered"]
    assert len(mine) >= 3 and all(d["attempts"] == 1 and d["last_status_code"] == 200 for d in mine)
    await delete(server.url, endpoint["id"])


async def test_each_outcome_evaluation_end_is_a_webhook(
    server: ServerThread, client: anthropic.AsyncAnthropic, receiver: Receiver
) -> None:
    receiver.start()
    endpoint = await register(server.url, receiver.url, "session.outcome_evaluation_ended")
    agent = await client.beta.agents.create(name="graded", model=MODEL)
    environment = await client.beta.environments.create(name="graded")
    rubric = {"type": "text", "content": "/grade needs_revision satisfied"}
    outcome = {"type": "user.define_outcome", "description": "Draft it.", "rubric": rubric}
    session = await client.beta.sessions.create(
        agent=agent.id,
        environment_id=environment.id,
        initial_events=[outcome],  # type: ignore[list-item]
    )

    async def both() -> list[Any] | None:
        got = events_about(receiver, client, endpoint["signing_secret"], session.id)
        return got if len(got) >= 2 else None

    got = await wait_until(both, "two outcome evaluation webhooks")
    assert [e.data.type for e in got] == ["session.outcome_evaluation_ended"] * 2  # parsed by the SDK
    await delete(server.url, endpoint["id"])


async def delete(base_url: str, endpoint_id: str) -> None:
    async with httpx.AsyncClient(base_url=base_url, headers=HEADERS, timeout=30) as http:
        assert (await http.delete(f"/v1/webhooks/{endpoint_id}")).status_code == 200


async def test_a_receiver_outage_is_ridden_out_with_retries(
    server: ServerThread, client: anthropic.AsyncAnthropic, receiver: Receiver
) -> None:
    endpoint = await register(server.url, receiver.url, "session.created")  # the receiver is down
    session_id = await new_session(client)

    async def retried() -> bool:
        log = await deliveries(server.url, endpoint["id"])
        return bool(log) and log[0]["attempts"] >= 2 and log[0]["status"] == "pending"

    await wait_until(retried, "a failed attempt to be retried")
    failed = (await deliveries(server.url, endpoint["id"]))[0]
    assert failed["last_status_code"] is None and failed["last_error"]

    receiver.start()

    async def delivered() -> list[Any]:
        return events_about(receiver, client, endpoint["signing_secret"], session_id)

    (event,) = await wait_until(delivered, "the delivery after the outage")
    assert event.data.type == "session.created"
    (entry,) = await deliveries(server.url, endpoint["id"])
    assert entry["status"] == "delivered" and entry["attempts"] >= 3
    await delete(server.url, endpoint["id"])


@pytest.fixture
def own_database(backend: str, tmp_path: Path) -> Iterator[str]:
    """A database no other test server sends from (its outbox is this test's alone)."""
    yield from fresh_database(backend, tmp_path)


async def test_the_outbox_survives_a_server_restart(own_database: str, receiver: Receiver) -> None:
    url = own_database
    first = webhook_server(url)
    try:
        endpoint = await register(first.url, receiver.url, "session.created")
        async with sdk(first.url) as client:
            session_id = await new_session(client)

        async def attempted() -> bool:
            log = await deliveries(first.url, endpoint["id"])
            return bool(log) and log[0]["attempts"] >= 1

        await wait_until(attempted, "a first (failed) attempt")
    finally:
        first.stop()
    receiver.start()  # back up only once the server that queued the event is gone
    second = webhook_server(url)
    try:
        async with sdk(second.url) as client:

            async def delivered() -> list[Any]:
                return events_about(receiver, client, endpoint["signing_secret"], session_id)

            (event,) = await wait_until(delivered, "the delivery by the restarted server")
        assert event.data.type == "session.created"
    finally:
        second.stop()


async def test_a_redirect_disables_the_endpoint_and_cancels_what_is_pending(
    server: ServerThread, client: anthropic.AsyncAnthropic
) -> None:
    redirecting = Receiver(status=302).start()
    try:
        endpoint = await register(server.url, redirecting.url, "session.created")
        await new_session(client)

        async def disabled() -> dict[str, Any] | None:
            async with httpx.AsyncClient(base_url=server.url, headers=HEADERS, timeout=30) as http:
                current: dict[str, Any] = (await http.get(f"/v1/webhooks/{endpoint['id']}")).json()
            return current if current["state"] == "disabled" else None

        current = await wait_until(disabled, "the endpoint to be disabled")
        assert "redirect" in current["disabled_reason"]
        await new_session(client)  # while disabled: never delivered
        await asyncio.sleep(0.5)
        assert len(redirecting.received) == 1
        # The redirected attempt was the last: nothing pending is sent to a disabled endpoint.
        assert [d["status"] for d in await deliveries(server.url, endpoint["id"])] == ["canceled"]
    finally:
        redirecting.stop()


async def test_twenty_failed_attempts_in_a_row_disable_the_endpoint(
    own_database: str,
) -> None:
    """The documented rule with its default (20), driven by a receiver that answers 500 and
    retries a few milliseconds apart. A success in between resets the count: only failures in a
    row disable."""
    failing = Receiver(status=200)
    failing.script = [500] * 10  # ten failures, then successes: the count must start over
    failing.start()
    server = webhook_server(own_database, webhook_retry_base_seconds=0.01, webhook_retry_max_seconds=0.05)
    try:
        async with sdk(server.url) as client:
            endpoint = await register(server.url, failing.url, "session.created")
            url = f"/v1/webhooks/{endpoint['id']}"

            async def current() -> dict[str, Any]:
                async with httpx.AsyncClient(base_url=server.url, headers=HEADERS, timeout=30) as http:
                    state: dict[str, Any] = (await http.get(url)).json()
                return state

            first = await new_session(client)

            async def delivered() -> bool:
                log = await deliveries(server.url, endpoint["id"])
                return [d["status"] for d in log] == ["delivered"]

            await wait_until(delivered, "the delivery once the receiver answers 200")
            assert [r.status for r in failing.received] == [500] * 10 + [200]
            assert (await current())["state"] == "enabled"
            # Every attempt so far, failed or not, was about the first session's event.
            assert {json.loads(r.body)["data"]["id"] for r in failing.received} == {first}

            failing.status = 500
            before = len(failing.received)
            await new_session(client)  # one delivery: its attempts are sequential, so exactly 20

            async def disabled() -> dict[str, Any] | None:
                state = await current()
                return state if state["state"] == "disabled" else None

            state = await wait_until(disabled, "the endpoint to be disabled")
            assert state["disabled_reason"] == "20 delivery attempts in a row failed"
            after = failing.received[before:]
            assert [r.status for r in after] == [500] * 20
            # Nothing is attempted once disabled: the delivery that was still pending is canceled,
            # not retried later.
            await asyncio.sleep(0.5)
            assert len(failing.received) == before + 20
            statuses = sorted(d["status"] for d in await deliveries(server.url, endpoint["id"]))
            assert statuses == ["canceled", "delivered"]
            # Re-enabling starts a fresh count (and delivers nothing that was canceled).
            async with httpx.AsyncClient(base_url=server.url, headers=HEADERS, timeout=30) as http:
                response = await http.post(url, json={"state": "enabled"})
            assert response.status_code == 200, response.text
            assert response.json()["state"] == "enabled" and response.json()["disabled_reason"] in ("", None)
    finally:
        server.stop()
        failing.stop()


async def test_bad_endpoints_are_400s(server: ServerThread) -> None:
    async with httpx.AsyncClient(base_url=server.url, headers=HEADERS, timeout=30) as http:
        for body in (
            {"url": "ftp://example.com/x", "enabled_events": ["session.created"]},
            {"url": "http://127.0.0.1:9/x", "enabled_events": ["session.nonsense"]},
            {"url": "http://127.0.0.1:9/x", "enabled_events": []},
            {"url": "http://user:pw@127.0.0.1:9/x", "enabled_events": ["session.created"]},
        ):
            response = await http.post("/v1/webhooks", json=body)
            assert response.status_code == 400, (body, response.text)
            assert response.json()["type"] == "error"
        assert (await http.get("/v1/webhooks/whep_missing")).status_code == 404


async def test_the_cli_registers_endpoints_and_shows_the_delivery_log(
    server: ServerThread, database: str, receiver: Receiver
) -> None:
    receiver.start()
    env = {**os.environ, "MAS_DATABASE_URL": database}

    def mas(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "app", "webhooks", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    created = await asyncio.to_thread(mas, "create", receiver.url, "--event", "session.created")
    endpoint_id, secret = created.strip().splitlines()[-1].split("\t")
    assert endpoint_id.startswith("whep_") and secret.startswith("whsec_")
    async with sdk(server.url) as client:
        session_id = await new_session(client)

        async def delivered() -> list[Any]:
            return events_about(receiver, client, secret, session_id)

        await wait_until(delivered, "the CLI endpoint's delivery")
    log = await asyncio.to_thread(mas, "deliveries", endpoint_id)
    assert "session.created" in log and "delivered" in log
    assert endpoint_id in await asyncio.to_thread(mas, "list")
    # --json: the API's own shapes, parseable by scripts; never the signing secret.
    (entry,) = json.loads(await asyncio.to_thread(mas, "deliveries", endpoint_id, "--json"))
    assert entry["endpoint_id"] == endpoint_id and entry["event_type"] == "session.created"
    assert entry["status"] == "delivered" and entry["attempts"] == 1 and entry["last_status_code"] == 200
    listed = await asyncio.to_thread(mas, "list", "--json")
    mine = [e for e in json.loads(listed) if e["id"] == endpoint_id]
    assert [(e["url"], e["enabled_events"], e["state"]) for e in mine] == [
        (receiver.url, ["session.created"], "enabled")
    ]
    assert secret not in listed
    await asyncio.to_thread(mas, "disable", endpoint_id)
    await delete(server.url, endpoint_id)
