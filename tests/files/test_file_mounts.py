"""Files mounted in real Docker sandboxes: upload -> resource -> the agent's bash sees the bytes,
read-only, at the documented paths; added mid-session it appears in the running container;
removed, it is gone. Driven through the strict SDK against a server with the embedded worker."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import AsyncIterator, Iterator

import anthropic
import docker
import docker.errors
import pytest

from tests.support.loop import TOOLSET, loop_server, of_type, result_text, sdk, turn
from tests.support.server import ServerThread

pytestmark = pytest.mark.docker


@pytest.fixture(scope="module")
def docker_server(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    """A loop server whose sandboxes are real containers (warm pool on: sessions adopt them)."""
    try:
        engine = docker.from_env()
        engine.ping()
    except docker.errors.DockerException as exc:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true but Docker is unreachable: {exc}")
        pytest.skip(f"Docker is unreachable: {exc}")
    directory = tmp_path_factory.mktemp(f"mounts-{backend}")
    server_iter = loop_server(backend, directory, sandbox_backend="docker", sandbox_warm_pool=1)
    server = next(server_iter)
    try:
        yield server
    finally:
        with contextlib.suppress(StopIteration):
            next(server_iter)
        label = {"label": f"mas.instance={server.settings.sandbox_instance}"}
        for container in engine.containers.list(all=True, filters=label):
            with contextlib.suppress(docker.errors.NotFound):
                container.remove(force=True)
        engine.close()


@pytest.fixture
async def client(docker_server: ServerThread) -> AsyncIterator[anthropic.AsyncAnthropic]:
    async with sdk(docker_server.url) as client:
        yield client


async def _session(client: anthropic.AsyncAnthropic, resources: list[dict[str, object]]) -> str:
    agent = await client.beta.agents.create(name="files", model="claude-sonnet-4-6", tools=[TOOLSET])
    environment = await client.beta.environments.create(name=f"files-{agent.id[-8:]}")
    session = await client.beta.sessions.create(
        agent=agent.id,
        environment_id=environment.id,
        resources=resources,  # type: ignore[arg-type]
    )
    return session.id


async def _bash(client: anthropic.AsyncAnthropic, session_id: str, command: str) -> tuple[str, bool]:
    events = await turn(client, session_id, "/tool bash " + json.dumps({"command": command}))
    result = of_type(events, "agent.tool_result")[-1]
    return result_text(result), bool(result.is_error)


async def test_mounted_files_are_the_uploaded_bytes_read_only(client: anthropic.AsyncAnthropic) -> None:
    text = await client.beta.files.upload(file=("notes.txt", b"hello from the host\n", "text/plain"))
    binary = os.urandom(12 * 1024 * 1024 + 3)
    blob = await client.beta.files.upload(file=("data.bin", binary, "application/octet-stream"))
    session_id = await _session(
        client,
        [
            {"type": "file", "file_id": text.id, "mount_path": "notes.txt"},
            {"type": "file", "file_id": blob.id, "mount_path": "/tmp/deep/data.bin"},
            {"type": "file", "file_id": text.id},
        ],
    )
    session = await client.beta.sessions.retrieve(session_id)
    mounts = [r.mount_path for r in session.resources]
    assert mounts == [
        "/mnt/session/uploads/notes.txt",
        "/mnt/session/uploads/tmp/deep/data.bin",
        f"/mnt/session/uploads/{text.id}",
    ]
    # Each mount is a session-owned copy with its own file id, scoped to the session.
    copies = [r.file_id for r in session.resources]  # type: ignore[union-attr]
    assert text.id not in copies and blob.id not in copies and len(set(copies)) == 3
    scoped = await client.beta.files.list(scope_id=session_id)
    assert sorted(f.id for f in scoped.data) == sorted(copies)

    out, _ = await _bash(
        client, session_id, f"cat /mnt/session/uploads/notes.txt /mnt/session/uploads/{text.id}"
    )
    assert out == "hello from the host\nhello from the host"
    out, _ = await _bash(client, session_id, "sha256sum /mnt/session/uploads/tmp/deep/data.bin")
    assert out.split()[0] == hashlib.sha256(binary).hexdigest()
    out, _ = await _bash(client, session_id, "echo x > /mnt/session/uploads/notes.txt; echo rc=$?")
    assert "Read-only file system" in out and "rc=1" in out


async def test_a_file_added_mid_session_appears_and_a_removed_one_goes(
    client: anthropic.AsyncAnthropic,
) -> None:
    session_id = await _session(client, [])
    out, _ = await _bash(client, session_id, "ls /mnt/session/uploads | wc -l")
    assert out == "0"
    upload = await client.beta.files.upload(file=("late.csv", b"a,b\n1,2\n", "text/csv"))
    added = await client.beta.sessions.resources.add(
        session_id, type="file", file_id=upload.id, mount_path="late.csv"
    )
    assert added.mount_path == "/mnt/session/uploads/late.csv" and added.file_id != upload.id
    out, _ = await _bash(client, session_id, "cat /mnt/session/uploads/late.csv")
    assert out == "a,b\n1,2"
    deleted = await client.beta.sessions.resources.delete(added.id, session_id=session_id)
    assert deleted.type == "session_resource_deleted"
    out, _ = await _bash(client, session_id, "ls /mnt/session/uploads | wc -l")
    assert out == "0"
    with pytest.raises(anthropic.NotFoundError):
        await client.beta.files.retrieve_metadata(added.file_id)
    assert (await client.beta.files.retrieve_metadata(upload.id)).id == upload.id
