"""Session outputs on real Docker sandboxes: what the agent writes under /mnt/session/outputs is
listed by files.list(scope_id=...) by the time the turn is idle, downloads byte-exact, follows
rewrites, never follows links out of the directory, and goes with the session."""

from __future__ import annotations

import hashlib
import json

import anthropic
import pytest

from tests.files.conftest import bash
from tests.support.loop import of_type, wait_idle

pytestmark = pytest.mark.docker


async def _session(client: anthropic.AsyncAnthropic) -> str:
    agent = await client.beta.agents.create(
        name="outputs", model="claude-sonnet-4-6", tools=[{"type": "agent_toolset_20260401"}]
    )
    environment = await client.beta.environments.create(name=f"outputs-{agent.id[-8:]}")
    session = await client.beta.sessions.create(agent=agent.id, environment_id=environment.id)
    return session.id


async def _outputs(
    client: anthropic.AsyncAnthropic, session_id: str
) -> dict[str, anthropic.types.beta.BetaFileMetadata]:
    return {f.filename: f async for f in client.beta.files.list(scope_id=session_id)}


async def test_outputs_become_downloadable_session_files(docker_sdk: anthropic.AsyncAnthropic) -> None:
    client = docker_sdk
    session_id = await _session(client)
    await bash(
        client,
        session_id,
        "mkdir -p /mnt/session/outputs/sub && printf 'total,3\\n' > /mnt/session/outputs/report.csv"
        " && head -c 5000000 /dev/urandom > /mnt/session/outputs/sub/blob.bin"
        " && ln -s /etc/passwd /mnt/session/outputs/leak && mkfifo /mnt/session/outputs/pipe"
        " && sha256sum /mnt/session/outputs/sub/blob.bin",
    )
    digest = (await bash(client, session_id, "sha256sum /mnt/session/outputs/sub/blob.bin"))[0].split()[0]
    outputs = await _outputs(client, session_id)
    assert sorted(outputs) == ["report.csv", "sub/blob.bin"]  # no link, no FIFO
    report = outputs["report.csv"]
    assert report.downloadable is True and report.scope is not None and report.scope.id == session_id
    assert report.mime_type == "text/csv" and report.size_bytes == 8
    assert await (await client.beta.files.download(report.id)).read() == b"total,3\n"
    blob = await (await client.beta.files.download(outputs["sub/blob.bin"].id)).read()
    assert hashlib.sha256(blob).hexdigest() == digest and len(blob) == 5_000_000

    # A rewrite keeps the file id and changes the content.
    await bash(client, session_id, "printf 'total,4\\n' > /mnt/session/outputs/report.csv")
    again = await _outputs(client, session_id)
    assert again["report.csv"].id == report.id
    assert await (await client.beta.files.download(report.id)).read() == b"total,4\n"

    await client.beta.sessions.delete(session_id)
    for output in again.values():
        with pytest.raises(anthropic.NotFoundError):
            await client.beta.files.retrieve_metadata(output.id)


async def test_the_outcome_grader_reads_the_outputs(docker_sdk: anthropic.AsyncAnthropic) -> None:
    """The marker exists only in the written file (the command prints it from parts): the grader
    sees it in the deliverables and is satisfied at the first evaluation."""
    client = docker_sdk
    session_id = await _session(client)
    command = "printf 'MARK-%s' 42 > /mnt/session/outputs/report.txt"
    event = {
        "type": "user.define_outcome",
        "description": "/tool bash " + json.dumps({"command": command}),
        "rubric": {"type": "text", "content": "/require MARK-42"},
    }
    await client.beta.sessions.events.send(session_id, events=[event])  # type: ignore[list-item]
    events = await wait_idle(client, session_id)
    ends = of_type(events, "span.outcome_evaluation_end")
    assert [(e.iteration, e.result) for e in ends] == [(0, "satisfied")]
    work = [e.model_dump(mode="json") for e in events if e.type.startswith("agent.")]
    assert work and "MARK-42" not in json.dumps(work)  # not in the transcript: only in the file
