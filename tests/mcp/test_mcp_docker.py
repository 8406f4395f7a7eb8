"""MCP with real Docker sandboxes: a vault's secret for an MCP server never reaches the container
(its environment, its processes, its files, its configuration), and under limited networking
``allow_mcp_servers`` opens exactly the agent's MCP hosts to the sandbox: against a web server of
our own answering as ``mcp.test`` and ``other.test`` on the session's egress network."""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anthropic
import docker
import docker.errors
import pytest

from tests.mcp.support import call, errors, mcp_toolset, text_of
from tests.support import docker_engine
from tests.support.loop import TOOLSET, loop_server, of_type, result_text, sdk, turn
from tests.support.mcp_servers import Auth, McpTestServer
from tests.support.server import ServerThread

pytestmark = [pytest.mark.docker, pytest.mark.timeout(600)]

MODEL = "claude-sonnet-4-6"


@pytest.fixture(scope="module")
def engine() -> Iterator[docker.DockerClient]:
    client = docker_engine.engine()
    yield client
    client.close()


@pytest.fixture(scope="module")
def docker_mcp_server(
    backend: str, tmp_path_factory: pytest.TempPathFactory, engine: docker.DockerClient
) -> Iterator[ServerThread]:
    """Networks of its own (the test web server's aliases must not reach other tests' sandboxes),
    and a web server on the egress network answering for mcp.test and other.test."""
    run = uuid.uuid4().hex[:8]
    sandbox_net, egress_net = f"mas-mcpd-{run}", f"mas-mcpd-{run}-egress"
    labels = {"mas.managed": "1", "mas.role": "shared-network"}
    engine.networks.create(egress_net, driver="bridge", labels=labels, check_duplicate=True)
    web = engine.containers.create(
        "mas-sandbox-base:bookworm",
        ["python3", "-m", "http.server", "80", "--directory", "/etc"],
        name=f"mas-mcpd-{run}-web",
        labels={"mas.role": "test-server"},
        network=egress_net,
        networking_config={egress_net: engine.api.create_endpoint_config(aliases=["mcp.test", "other.test"])},
    )
    servers = None
    try:
        web.start()
        servers = loop_server(
            backend,
            tmp_path_factory.mktemp(f"mcp-docker-{backend}"),
            sandbox_backend="docker",
            sandbox_warm_pool=0,
            sandbox_network=sandbox_net,
            sandbox_egress_network=egress_net,
            mcp_call_timeout_seconds=60,
        )
        server = next(servers)
        yield server
    finally:
        if servers is not None:
            with contextlib.suppress(StopIteration):
                next(servers)
            instance = {"label": f"mas.instance={server.settings.sandbox_instance}"}
            for container in engine.containers.list(all=True, filters=instance, ignore_removed=True):
                with contextlib.suppress(docker.errors.NotFound):
                    container.remove(force=True)
        with contextlib.suppress(docker.errors.NotFound):
            web.remove(force=True)
        for name in (sandbox_net, egress_net):
            for network in engine.networks.list(names=[name]):
                if network.name == name:
                    with contextlib.suppress(docker.errors.APIError):
                        network.remove()


@pytest.fixture
async def client(docker_mcp_server: ServerThread) -> AsyncIterator[anthropic.AsyncAnthropic]:
    async with sdk(docker_mcp_server.url) as sdk_client:
        yield sdk_client


def _sandbox(engine: docker.DockerClient, server: ServerThread, session_id: str) -> Any:
    filters = {"label": [f"mas.instance={server.settings.sandbox_instance}", f"mas.session={session_id}"]}
    found = [
        c
        for c in engine.containers.list(all=True, filters=filters, ignore_removed=True)
        if c.labels.get("mas.role") == "sandbox"
    ]
    assert len(found) == 1, found
    return found[0]


async def test_a_vault_secret_for_an_mcp_server_never_reaches_the_container(
    client: anthropic.AsyncAnthropic, docker_mcp_server: ServerThread, engine: docker.DockerClient
) -> None:
    private = McpTestServer(auth=Auth(required=True)).start()
    try:
        token = private.auth.issue()
        vault = await client.beta.vaults.create(display_name="docker-alice")
        await client.beta.vaults.credentials.create(
            vault.id, auth={"type": "static_bearer", "token": token, "mcp_server_url": private.url}
        )
        agent = await client.beta.agents.create(
            name="mcp-docker",
            model=MODEL,
            mcp_servers=[{"type": "url", "name": "private", "url": private.url}],
            tools=[mcp_toolset("private"), TOOLSET],  # type: ignore[list-item]
        )
        environment = await client.beta.environments.create(name=f"mcp-docker-{agent.id[-8:]}")
        session = await client.beta.sessions.create(
            agent=agent.id, environment_id=environment.id, vault_ids=[vault.id]
        )
        dump = "env; for f in /proc/[0-9]*/environ /proc/[0-9]*/cmdline; do tr '\\0' '\\n' < $f; done"
        events = await turn(
            client,
            session.id,
            call("private", "add", a=4, b=5) + "\n/tool bash " + json.dumps({"command": dump}),
        )
        assert errors(events) == []
        assert [text_of(r) for r in of_type(events, "agent.mcp_tool_result")] == ["9"]  # it was used
        inside = result_text(of_type(events, "agent.tool_result")[-1])
        assert "PATH=" in inside and token not in inside

        container = _sandbox(engine, docker_mcp_server, session.id)
        container.reload()
        assert token not in json.dumps(container.attrs)  # env, command, labels, mounts
        places = ["/workspace", "/tmp", "/var/tmp", "/root", "/home", "/mnt", "/etc", "/run", "/opt"]
        found = container.exec_run(["grep", "-rlsF", "-e", token, *places])
        assert found.exit_code == 1 and found.output == b"", found.output[:500]
        await client.beta.sessions.delete(session.id)
    finally:
        private.stop()


async def _curl_codes(client: anthropic.AsyncAnthropic, session_id: str, hosts: list[str]) -> dict[str, str]:
    command = "; ".join(
        f"printf '{host} '; curl -s -m 10 -o /dev/null -w '%{{http_code}}\\n' http://{host}/"
        for host in hosts
    )
    events = await turn(client, session_id, "/tool bash " + json.dumps({"command": command}))
    text = result_text(of_type(events, "agent.tool_result")[-1])
    return dict(line.split(" ", 1) for line in text.strip().splitlines())


@pytest.mark.parametrize("allow", [True, False])
async def test_allow_mcp_servers_opens_exactly_the_agents_mcp_hosts(
    client: anthropic.AsyncAnthropic, allow: bool
) -> None:
    agent = await client.beta.agents.create(
        name="mcp-hosts",
        model=MODEL,
        # Unreachable from the server (mcp.test is a name on the sandbox's network only): the
        # session gets an mcp_connection_failed_error and its other tools go on.
        mcp_servers=[{"type": "url", "name": "remote", "url": "http://mcp.test/mcp"}],
        tools=[mcp_toolset("remote"), TOOLSET],  # type: ignore[list-item]
    )
    environment = await client.beta.environments.create(
        name=f"mcp-hosts-{agent.id[-8:]}-{allow}",
        config={
            "type": "cloud",
            "networking": {
                "type": "limited",
                "allowed_hosts": [],
                "allow_package_managers": False,
                "allow_mcp_servers": allow,
            },
        },
    )
    session = await client.beta.sessions.create(agent=agent.id, environment_id=environment.id)
    started = time.monotonic()
    codes = await _curl_codes(client, session.id, ["mcp.test", "other.test", "pypi.org"])
    expected_mcp = "200" if allow else "403"
    assert codes == {"mcp.test": expected_mcp, "other.test": "403", "pypi.org": "403"}, (
        codes,
        time.monotonic() - started,
    )
    await client.beta.sessions.delete(session.id)
