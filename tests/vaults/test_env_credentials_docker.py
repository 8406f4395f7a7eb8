"""`environment_variable` credentials end to end: the SDK in strict mode creates the vault and
credential, the agent's bash calls an HTTPS service through the session's egress proxy, and the
service (ours, on the egress network, with a CA of its own given to mas through
MAS_SANDBOX_EGRESS_CA_BUNDLE) gets the real value while the sandbox, the API, the events and the
server's log lines never hold it. Rotation and archival reach the running session."""

from __future__ import annotations

import contextlib
import json
import logging
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anthropic
import docker
import docker.errors
import httpx
import pytest

from tests.support import docker_engine, https_echo
from tests.support.clients import API_KEY
from tests.support.https_echo import seen
from tests.support.loop import TOOLSET, log, loop_server, of_type, result_text, sdk, turn
from tests.support.server import ServerThread

pytestmark = [pytest.mark.docker, pytest.mark.timeout(600)]

SECRET = "env-secret-4c1f9a7e22d0"
NAMES = ["api.secret.test", "other.test"]


@pytest.fixture(scope="module")
def engine() -> Iterator[docker.DockerClient]:
    client = docker_engine.engine()
    yield client
    client.close()


@pytest.fixture(scope="module")
def echo_server(
    backend: str, tmp_path_factory: pytest.TempPathFactory, engine: docker.DockerClient
) -> Iterator[tuple[ServerThread, Any]]:
    """A mas server on networks of its own, and the HTTPS echo server on its egress network."""
    run = uuid.uuid4().hex[:8]
    sandbox_net, egress_net = f"mas-envc-{run}", f"mas-envc-{run}-egress"
    labels = {"mas.managed": "1", "mas.role": "shared-network"}
    engine.networks.create(egress_net, driver="bridge", labels=labels, check_duplicate=True)
    directory = tmp_path_factory.mktemp(f"env-credentials-{backend}")
    ca = https_echo.authority(directory / "upstream")
    echo = https_echo.start(
        engine, ca, egress_net, NAMES, f"mas-envc-{run}-echo", {"mas.role": "test-server"}
    )
    servers = None
    server = None
    try:
        servers = loop_server(
            backend,
            directory,
            sandbox_backend="docker",
            sandbox_warm_pool=0,
            sandbox_network=sandbox_net,
            sandbox_egress_network=egress_net,
            sandbox_egress_ca_bundle=https_echo.ca_file(ca),
        )
        server = next(servers)
        yield server, echo
    finally:
        if servers is not None:
            with contextlib.suppress(StopIteration):
                next(servers)
        if server is not None:  # (a server that did not start has made no containers)
            instance = {"label": f"mas.instance={server.settings.sandbox_instance}"}
            for container in engine.containers.list(all=True, filters=instance, ignore_removed=True):
                with contextlib.suppress(docker.errors.NotFound):
                    container.remove(force=True)
        with contextlib.suppress(docker.errors.NotFound):
            echo.remove(force=True)
        for name in (sandbox_net, egress_net):
            for network in engine.networks.list(names=[name]):
                if network.name == name:
                    with contextlib.suppress(docker.errors.APIError):
                        network.remove()


@pytest.fixture
async def client(echo_server: tuple[ServerThread, Any]) -> AsyncIterator[anthropic.AsyncAnthropic]:
    async with sdk(echo_server[0].url) as sdk_client:
        yield sdk_client


def bash(command: str) -> str:
    return "/tool bash " + json.dumps({"command": command})


async def _everything_a_client_sees(server: ServerThread, session_id: str, vault_id: str) -> str:
    headers = {"x-api-key": API_KEY, "anthropic-version": "2023-06-01"}
    async with httpx.AsyncClient(base_url=server.url, headers=headers) as http:
        paths = [
            f"/v1/sessions/{session_id}",
            f"/v1/sessions/{session_id}/events?limit=1000",
            f"/v1/vaults/{vault_id}/credentials?include_archived=true",
        ]
        return "\n".join([(await http.get(p)).text for p in paths])


async def test_the_service_gets_the_secret_and_nothing_else_does(
    client: anthropic.AsyncAnthropic,
    echo_server: tuple[ServerThread, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    server, echo = echo_server
    vault = await client.beta.vaults.create(display_name="env-vault")
    credential = await client.beta.vaults.credentials.create(
        vault.id,
        auth={
            "type": "environment_variable",
            "secret_name": "API_TOKEN",
            "secret_value": SECRET,
            "networking": {"type": "limited", "allowed_hosts": ["api.secret.test"]},
        },
    )
    agent = await client.beta.agents.create(name="env-cred", model="claude-sonnet-4-6", tools=[TOOLSET])  # type: ignore[list-item]
    environment = await client.beta.environments.create(name=f"env-cred-{agent.id[-8:]}")
    session = await client.beta.sessions.create(
        agent=agent.id, environment_id=environment.id, vault_ids=[vault.id]
    )
    call = 'curl -sS -m 20 -H "Authorization: Bearer $API_TOKEN" https://api.secret.test/first; env'
    events = await turn(client, session.id, bash(call))
    inside = result_text(of_type(events, "agent.tool_result")[-1])
    assert inside.startswith("ok") and "API_TOKEN=mas_placeholder_" in inside and SECRET not in inside
    assert seen(echo, "/first")["headers"]["Authorization"] == f"Bearer {SECRET}"

    # Another host: the placeholder goes out as it is (-k: a tunnel, the service's own certificate).
    await turn(client, session.id, bash('curl -sSk -m 20 -H "X: $API_TOKEN" https://other.test/other'))
    assert seen(echo, "/other")["headers"]["X"].startswith("mas_placeholder_")

    # Rotation reaches the running session at its next tool step; archival too.
    await client.beta.vaults.credentials.update(
        credential.id, vault_id=vault.id, auth={"type": "environment_variable", "secret_value": "rotated-77"}
    )
    await turn(client, session.id, bash(call.replace("/first", "/rotated")))
    assert seen(echo, "/rotated")["headers"]["Authorization"] == "Bearer rotated-77"
    await client.beta.vaults.credentials.archive(credential.id, vault_id=vault.id)
    await turn(client, session.id, bash(call.replace("/first", "/archived").replace("-sS", "-sSk")))
    assert seen(echo, "/archived")["headers"]["Authorization"].startswith("Bearer mas_placeholder_")

    everything = await _everything_a_client_sees(server, session.id, vault.id)
    assert credential.id in everything and SECRET not in everything and "rotated-77" not in everything
    assert SECRET not in str([e.model_dump() for e in await log(client, session.id)])
    lines = [r.getMessage() for r in caplog.records if not r.name.startswith("anthropic")]
    assert lines and not [line for line in lines if SECRET in line or "rotated-77" in line]
    await client.beta.sessions.delete(session.id)
