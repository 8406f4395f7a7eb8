"""Sessions on the real Docker engine through the SDK against a real server: an injected engine
error and a hung engine each end the turn with a `session.error` that says what failed (never
"worker stopped" retries), the API keeps answering and the next turn works once the engine does;
an interrupt kills a sleeping tool; long tool calls do not starve a worker's other sessions."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Iterator

import anthropic
import docker
import docker.errors
import httpx
import pytest

from app.sandbox.docker_backend import DockerBackend
from tests.sandbox.conftest import sandbox_settings
from tests.support.hardening import interrupt_kills_a_sleeping_tool, long_tools_do_not_starve_other_sessions
from tests.support.loop import (
    idles,
    loop_server,
    message,
    new_session,
    of_type,
    result_text,
    sdk,
    send,
    stop_reason,
    wait_idle,
)
from tests.support.server import ServerThread

pytestmark = [pytest.mark.docker, pytest.mark.timeout(300)]

SDK = anthropic.AsyncAnthropic
SLOTS = 2
ECHO = '/tool bash {"command": "echo from the sandbox"}'


@pytest.fixture(scope="module")
def server(
    docker_client: docker.DockerClient, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerThread]:
    directory = tmp_path_factory.mktemp("engine-sessions")
    overrides = sandbox_settings(directory / "sandbox").model_dump(
        include={"sandbox_instance", "sandbox_network", "sandbox_egress_network", "sandbox_pids"}
    )
    yield from loop_server(
        "sqlite",
        directory,
        sandbox_backend="docker",
        sandbox_warm_pool=0,
        worker_concurrency=SLOTS,
        **overrides,
    )


@pytest.fixture
async def client(server: ServerThread) -> AsyncIterator[SDK]:
    async with sdk(server.url) as client:
        yield client


def backend_of(server: ServerThread) -> DockerBackend:
    backend = server.app.state.worker.deps.sandbox
    assert isinstance(backend, DockerBackend)
    return backend


async def test_an_engine_error_ends_the_turn_with_a_session_error_and_the_next_turn_works(
    server: ServerThread, client: SDK
) -> None:
    engine = backend_of(server).engine

    def refuse(what: str) -> None:
        if what == "create the sandbox container":
            raise docker.errors.APIError("injected: no space left on device")

    engine.fault = refuse
    try:
        session_id = await new_session(client)
        await send(client, session_id, message(ECHO))
        events = await wait_idle(client, session_id)
    finally:
        engine.fault = None
    errors = of_type(events, "session.error")
    assert len(errors) == 1
    assert "create the sandbox container" in errors[0].error.message
    assert "no space left on device" in errors[0].error.message
    assert errors[0].error.retry_status.type == "exhausted"
    assert stop_reason(idles(events)[0]) == {"type": "retries_exhausted"}
    [result] = of_type(events, "agent.tool_result")
    assert result.is_error and "unavailable" in result_text(result)
    assert (await client.beta.sessions.retrieve(session_id)).status == "idle"

    await send(client, session_id, message(ECHO))
    events = await wait_idle(client, session_id, 2)
    assert result_text(of_type(events, "agent.tool_result")[-1]) == "from the sandbox"


async def test_a_hung_engine_keeps_the_api_up_reports_the_sandbox_unavailable_and_recovers(
    server: ServerThread, client: SDK
) -> None:
    engine = backend_of(server).engine
    answer = threading.Event()

    def hang(_what: str) -> None:
        answer.wait(120)

    engine.fault = hang
    engine.timeout_s = 2.0  # short while the engine hangs; real calls get the default again
    try:
        session_id = await new_session(client)
        await send(client, session_id, message(ECHO))
        events = await wait_idle(client, session_id)
        # While the engine hangs: the API answers and says why sandboxes cannot start.
        assert (await client.beta.sessions.retrieve(session_id)).status == "idle"
        async with httpx.AsyncClient() as http:
            health = (await http.get(server.url + "/health")).json()
            ready = await http.get(server.url + "/ready", timeout=60)
        assert health["status"] == "ok" and "did not answer" in health["sandbox"]
        assert ready.status_code == 503 and ready.json()["failed"] == ["docker"]
        assert "did not answer within 2 s (ping)" in ready.json()["checks"]["docker"]
    finally:
        answer.set()
        engine.fault = None
        engine.timeout_s = server.settings.sandbox_engine_timeout_seconds
    [error] = of_type(events, "session.error")
    assert "did not answer within 2 s" in error.error.message
    assert stop_reason(idles(events)[0]) == {"type": "retries_exhausted"}

    await send(client, session_id, message(ECHO))
    events = await wait_idle(client, session_id, 2)
    assert result_text(of_type(events, "agent.tool_result")[-1]) == "from the sandbox"
    async with httpx.AsyncClient() as http:
        assert (await http.get(server.url + "/health")).json()["sandbox"] == "ok"
        ready = await http.get(server.url + "/ready", timeout=60)
    assert ready.status_code == 200 and ready.json()["checks"]["docker"] == "ok"


async def test_an_interrupt_kills_a_sleeping_tool(client: SDK) -> None:
    await interrupt_kills_a_sleeping_tool(client)


async def test_long_tool_calls_do_not_starve_other_sessions(client: SDK) -> None:
    await long_tools_do_not_starve_other_sessions(client, SLOTS)
