"""`credential_host_unreachable_error`: an `environment_variable` credential whose hosts the
session's limited environment does not allow is reported once per turn (at its first tool step
in the sandbox), with the credential and vault ids and never the secret; the turn goes on."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import anthropic
import pytest

from tests.support.loop import TOOLSET, log, loop_server, of_type, result_text, sdk, turn
from tests.support.server import ServerThread

SECRET = "unreachable-secret-5e6f7a8b"


@pytest.fixture(scope="module")
def server(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    yield from loop_server(backend, tmp_path_factory.mktemp(f"credential-hosts-{backend}"))


@pytest.fixture
async def client(server: ServerThread) -> AsyncIterator[anthropic.AsyncAnthropic]:
    async with sdk(server.url) as sdk_client:
        yield sdk_client


async def test_hosts_outside_the_environment_are_reported_once_per_turn(
    client: anthropic.AsyncAnthropic,
) -> None:
    vault = await client.beta.vaults.create(display_name="hosts")
    blocked = await client.beta.vaults.credentials.create(
        vault.id,
        auth={
            "type": "environment_variable",
            "secret_name": "BLOCKED",
            "secret_value": SECRET,
            "networking": {"type": "limited", "allowed_hosts": ["api.allowed.test", "api.blocked.test"]},
        },
    )
    await client.beta.vaults.credentials.create(
        vault.id,
        auth={
            "type": "environment_variable",
            "secret_name": "FINE",
            "secret_value": SECRET + "-2",
            "networking": {"type": "limited", "allowed_hosts": ["*.allowed.test"]},
        },
    )
    agent = await client.beta.agents.create(name="hosts", model="claude-sonnet-4-6", tools=[TOOLSET])  # type: ignore[list-item]
    environment = await client.beta.environments.create(
        name=f"hosts-{agent.id[-8:]}",
        config={"type": "cloud", "networking": {"type": "limited", "allowed_hosts": ["api.allowed.test"]}},
    )
    session = await client.beta.sessions.create(
        agent=agent.id, environment_id=environment.id, vault_ids=[vault.id]
    )

    first = await turn(client, session.id, '/tool bash {"command": "echo done"}')
    await turn(client, session.id, '/tool bash {"command": "echo again"}')

    assert result_text(of_type(first, "agent.tool_result")[-1]).strip() == "done"  # the turn went on
    reported = [e.error for e in of_type(await log(client, session.id), "session.error")]
    assert len(reported) == 2  # one per turn, for the one credential with a blocked host
    for error in reported:
        assert error.type == "credential_host_unreachable_error"
        assert (error.credential_id, error.vault_id) == (blocked.id, vault.id)
        assert "api.blocked.test" in error.message and "api.allowed.test," not in error.message
    assert SECRET not in str([e.model_dump() for e in await log(client, session.id)])
