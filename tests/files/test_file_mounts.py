"""Files mounted in real Docker sandboxes: upload -> resource -> the agent's bash sees the bytes,
read-only, at the documented paths; added mid-session it appears in the running container;
removed, it is gone. Driven through the strict SDK against a server with the embedded worker."""

from __future__ import annotations

import hashlib
import os

import anthropic
import pytest

from tests.files.conftest import bash
from tests.support.loop import TOOLSET

pytestmark = pytest.mark.docker


async def _session(client: anthropic.AsyncAnthropic, resources: list[dict[str, object]]) -> str:
    agent = await client.beta.agents.create(name="files", model="claude-sonnet-4-6", tools=[TOOLSET])  # type: ignore[list-item]
    environment = await client.beta.environments.create(name=f"files-{agent.id[-8:]}")
    session = await client.beta.sessions.create(
        agent=agent.id,
        environment_id=environment.id,
        resources=resources,  # type: ignore[arg-type]
    )
    return session.id


async def test_mounted_files_are_the_uploaded_bytes_read_only(docker_sdk: anthropic.AsyncAnthropic) -> None:
    client = docker_sdk
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

    out, _ = await bash(
        client, session_id, f"cat /mnt/session/uploads/notes.txt /mnt/session/uploads/{text.id}"
    )
    assert out == "hello from the host\nhello from the host"
    out, _ = await bash(client, session_id, "sha256sum /mnt/session/uploads/tmp/deep/data.bin")
    assert out.split()[0] == hashlib.sha256(binary).hexdigest()
    out, _ = await bash(client, session_id, "echo x > /mnt/session/uploads/notes.txt; echo rc=$?")
    assert "Read-only file system" in out and "rc=1" in out


async def test_a_file_added_mid_session_appears_and_a_removed_one_goes(
    docker_sdk: anthropic.AsyncAnthropic,
) -> None:
    client = docker_sdk
    session_id = await _session(client, [])
    out, _ = await bash(client, session_id, "ls /mnt/session/uploads | wc -l")
    assert out == "0"
    upload = await client.beta.files.upload(file=("late.csv", b"a,b\n1,2\n", "text/csv"))
    added = await client.beta.sessions.resources.add(
        session_id, type="file", file_id=upload.id, mount_path="late.csv"
    )
    assert added.mount_path == "/mnt/session/uploads/late.csv" and added.file_id != upload.id
    out, _ = await bash(client, session_id, "cat /mnt/session/uploads/late.csv")
    assert out == "a,b\n1,2"
    deleted = await client.beta.sessions.resources.delete(added.id, session_id=session_id)
    assert deleted.type == "session_resource_deleted"
    out, _ = await bash(client, session_id, "ls /mnt/session/uploads | wc -l")
    assert out == "0"
    with pytest.raises(anthropic.NotFoundError):
        await client.beta.files.retrieve_metadata(added.file_id)
    assert (await client.beta.files.retrieve_metadata(upload.id)).id == upload.id
