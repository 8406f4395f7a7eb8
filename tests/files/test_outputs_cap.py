"""The total cap on a session's kept outputs (``MAS_FILES_OUTPUTS_MAX_BYTES``), which bounds what a
session keeps even when its sandbox has no disk quota: the unisolated local backend here, whose
outputs directory is ``../outputs`` from the workspace."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator

import anthropic
import pytest

from tests.support.loop import loop_server, of_type, result_text, sdk, turn
from tests.support.server import ServerThread

CAP = 10_000


@pytest.fixture(scope="module")
def capped_server(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    directory = tmp_path_factory.mktemp(f"outputs-cap-{backend}")
    yield from loop_server(backend, directory, files_outputs_max_bytes=CAP, sandbox_disk_mb=0)


@pytest.fixture
async def client(capped_server: ServerThread) -> AsyncIterator[anthropic.AsyncAnthropic]:
    async with sdk(capped_server.url) as sdk_client:
        yield sdk_client


async def _bash(client: anthropic.AsyncAnthropic, session_id: str, command: str) -> str:
    events = await turn(client, session_id, "/tool bash " + json.dumps({"command": command}))
    result = of_type(events, "agent.tool_result")[-1]
    assert not result.is_error, result_text(result)
    return result_text(result)


async def _kept(client: anthropic.AsyncAnthropic, session_id: str) -> dict[str, int]:
    return {f.filename: f.size_bytes async for f in client.beta.files.list(scope_id=session_id)}


async def test_outputs_past_the_total_cap_are_not_kept_until_room_is_made(
    client: anthropic.AsyncAnthropic,
) -> None:
    agent = await client.beta.agents.create(
        name="outputs-cap", model="claude-sonnet-4-6", tools=[{"type": "agent_toolset_20260401"}]
    )
    environment = await client.beta.environments.create(name=f"outputs-cap-{agent.id[-8:]}")
    session = await client.beta.sessions.create(agent=agent.id, environment_id=environment.id)
    out = "../outputs"
    write = f"head -c 6000 /dev/urandom > {out}/a.bin && head -c 6000 /dev/urandom > {out}/b.bin"
    await _bash(client, session.id, write)
    assert await _kept(client, session.id) == {"a.bin": 6000}  # b.bin would make 12,000 > 10,000

    # A rewrite that fits its own room is kept; the skipped output is looked at again.
    await _bash(client, session.id, f"head -c 3000 /dev/urandom > {out}/a.bin && echo ok")
    assert await _kept(client, session.id) == {"a.bin": 3000, "b.bin": 6000}

    await _bash(client, session.id, f"head -c 2000 /dev/urandom > {out}/c.bin && echo ok")
    assert await _kept(client, session.id) == {"a.bin": 3000, "b.bin": 6000}
    await _bash(client, session.id, f"head -c 20000 /dev/urandom > {out}/a.bin && echo ok")  # past it alone
    kept = await _kept(client, session.id)
    assert kept == {"a.bin": 3000, "b.bin": 6000}  # the old content of a.bin stays
    await client.beta.sessions.delete(session.id)
