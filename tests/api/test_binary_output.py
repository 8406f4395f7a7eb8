"""Binary tool output on both databases (issue 8, item 5): `head -c 300 /dev/urandom` in a real
Docker sandbox. PostgreSQL's text and jsonb cannot hold NUL; before, the step failed to commit,
was retried for ever and the output was lost. Now every NUL (and any lone surrogate) becomes
U+FFFD, the rest of the output is kept, and the turn ends normally."""

from __future__ import annotations

import json
from collections.abc import Iterator

import docker
import pytest

from tests.support.loop import (
    idles,
    log,
    loop_server,
    new_session,
    of_type,
    result_text,
    sdk,
    stop_reason,
    texts,
    turn,
)
from tests.support.server import ServerThread

pytestmark = [pytest.mark.docker, pytest.mark.postgres]


@pytest.fixture(scope="module")
def docker_server(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    servers = loop_server(backend, tmp_path_factory.mktemp(f"binary-{backend}"), sandbox_backend="docker")
    server = next(servers)
    try:
        yield server
    finally:
        servers.close()
        client = docker.from_env()
        try:
            label = f"mas.instance={server.settings.sandbox_instance}"
            for container in client.containers.list(all=True, filters={"label": label}, ignore_removed=True):
                container.remove(force=True)
        finally:
            client.close()


async def test_random_bytes_from_bash_are_stored_and_shown(docker_server: ServerThread) -> None:
    command = "head -c 300 /dev/urandom; printf 'before\\000after'"
    async with sdk(docker_server.url) as client:
        session_id = await new_session(client)
        events = await turn(client, session_id, f"/tool bash {json.dumps({'command': command})}")
        results = of_type(events, "agent.tool_result")
        assert len(results) == 1, [e.type for e in events]
        output = result_text(results[0])
        assert output.endswith("before\ufffdafter")
        assert "\x00" not in output
        assert len(output) > len("before\ufffdafter")  # the random part is there too
        assert not of_type(events, "session.error")
        assert stop_reason(idles(events)[-1]) == {"type": "end_turn"}
        # The model was given the same text (the offline model echoes tool results).
        assert texts(events)[-1].endswith("before\ufffdafter")
        # A second turn reads the history back from the database: nothing is stuck.
        again = await turn(client, session_id, "/tool bash {\"command\": \"printf ok\"}")
        assert result_text(of_type(again, "agent.tool_result")[-1]) == "ok"
        assert [e.id for e in await log(client, session_id)] == [e.id for e in again]
        await client.beta.sessions.delete(session_id)
