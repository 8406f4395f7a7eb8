"""Record and replay, end to end: three real mas processes.

An upstream mas serves its offline model; a recording mas uses it as its Messages API (a
compatible base URL, with a key that must not reach the cassette); then, with the upstream
stopped, a replaying mas runs the same sessions from the cassette alone.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import pytest

from tests.support import scratch
from tests.support.clients import API_KEY, strict_client
from tests.support.factories import MODEL, user_message
from tests.support.server import ServerProcess, stop_tool_servers

SECRET = "sk-ant-api03-" + "s3cr3t" * 8  # what a real key looks like; it must never be stored
CASSETTE = "agent/multi_turn"
TURNS = [
    'Look around.\n/tool bash {"command": "echo recorded-one"}',
    "Write a note and count the files.\n"
    '/tool write {"file_path": "/workspace/note.txt", "content": "cassette"}\n'
    '/tool bash {"command": "echo two-tools"}',
]


def mas_env(tmp: Path, **extra: str) -> dict[str, str]:
    instance = f"test-{uuid.uuid4().hex[:10]}"
    state = scratch.make_dir(instance)
    return {
        "MAS_DATABASE_URL": f"sqlite+aiosqlite:///{tmp / (instance + '.db')}",
        "MAS_API_KEYS": API_KEY,
        "MAS_SANDBOX_BACKEND": "local",
        "MAS_SANDBOX_INSTANCE": instance,
        "MAS_SANDBOX_STATE_DIR": str(state),
        "MAS_LOG_LEVEL": "warning",
        "MAS_RETRY_BASE_SECONDS": "0.1",
        **extra,
    }


class Mas:
    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.process = ServerProcess(env)

    def __enter__(self) -> Mas:
        self.process.start()
        self.client = strict_client(self.process.url)
        return self

    def __exit__(self, *exc: object) -> None:
        self.process.stop()
        stop_tool_servers(Path(self.env["MAS_SANDBOX_STATE_DIR"]))


def run_session(client: anthropic.Anthropic, turns: list[str]) -> tuple[str, list[dict[str, Any]]]:
    env = client.beta.environments.create(name="cassette-env")
    agent = client.beta.agents.create(
        name="cassette-agent",
        model=MODEL,
        system="You test cassettes.",
        tools=[{"type": "agent_toolset_20260401"}],
    )
    session = client.beta.sessions.create(agent=agent.id, environment_id=env.id)
    for number, turn in enumerate(turns, start=1):
        client.beta.sessions.events.send(session.id, events=[user_message(turn)])  # type: ignore[list-item]
        wait_idle(client, session.id, number)
    return session.id, [e.model_dump(mode="json") for e in client.beta.sessions.events.list(session.id)]


def wait_idle(client: anthropic.Anthropic, session_id: str, count: int, within: float = 180) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        events = list(client.beta.sessions.events.list(session_id))
        if sum(e.type == "session.status_idle" for e in events) >= count:
            return
        time.sleep(0.2)
    raise AssertionError(f"session {session_id} did not go idle {count} times: {[e.type for e in events]}")


ID_VALUE = re.compile(r"^[a-z]+_[A-Za-z0-9]{6,}$")


def comparable(events: list[dict[str, Any]]) -> list[Any]:
    """Events with ids numbered by first appearance, and timestamps and wall-clock durations
    (`usage.active_seconds`) left out."""
    seen: dict[str, str] = {}

    def walk(value: Any, key: str = "") -> Any:
        if isinstance(value, dict):
            return {k: walk(v, k) for k, v in value.items() if not k.endswith(("_at", "_seconds"))}
        if isinstance(value, list):
            return [walk(v) for v in value]
        if isinstance(value, str) and (key == "id" or key.endswith("_id") or ID_VALUE.match(value)):
            return seen.setdefault(value, f"<id {len(seen) + 1}>")
        return value

    return [walk(event) for event in events]


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, list[dict[str, Any]], str]]:
    tmp = tmp_path_factory.mktemp("cassettes")
    cassettes = tmp / "cassettes"
    with Mas(mas_env(tmp, MAS_MODEL_BACKEND="offline", MAS_EMBEDDED_WORKER="false")) as upstream:
        recording = mas_env(
            tmp,
            MAS_MODEL_BACKEND="record",
            MAS_ANTHROPIC_BASE_URL=upstream.process.url,
            MAS_ANTHROPIC_API_KEY=SECRET,
            MAS_CASSETTE_DIR=str(cassettes),
            MAS_CASSETTE=CASSETTE,
        )
        with Mas(recording) as recorder:
            _, events = run_session(recorder.client, TURNS)
    yield cassettes, events, upstream.process.url


@pytest.fixture(scope="module")
def replayer(
    recorded: tuple[Path, list[dict[str, Any]], str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Mas]:
    cassettes, _, stopped_upstream = recorded
    env = mas_env(
        tmp_path_factory.mktemp("replay"),
        MAS_MODEL_BACKEND="replay",
        MAS_ANTHROPIC_BASE_URL=stopped_upstream,  # as when recording; nothing listens there now
        MAS_CASSETTE_DIR=str(cassettes),
        MAS_CASSETTE=CASSETTE,
    )
    with Mas(env) as mas:
        yield mas


def test_recording_streams_the_upstream_answers_through(
    recorded: tuple[Path, list[dict[str, Any]], str],
) -> None:
    _, events, _ = recorded
    types = [e["type"] for e in events]
    assert types.count("agent.tool_use") == 3
    results = [e for e in events if e["type"] == "agent.tool_result"]
    assert [r["is_error"] for r in results] == [False, False, False]
    assert "recorded-one" in json.dumps(results[0]["content"])
    assert "two-tools" in json.dumps(results[2]["content"])


def test_replay_without_the_upstream_gives_the_same_events(
    recorded: tuple[Path, list[dict[str, Any]], str], replayer: Mas
) -> None:
    _, original, _ = recorded
    _, replayed = run_session(replayer.client, TURNS)
    assert comparable(replayed) == comparable(original)


def test_a_changed_prompt_is_a_clear_miss_naming_the_closest_request(replayer: Mas) -> None:
    changed = TURNS[0].replace("recorded-one", "recorded-two")
    _, events = run_session(replayer.client, [changed])
    errors = [e for e in events if e["type"] == "session.error"]
    assert len(errors) == 1, [e["type"] for e in events]
    message = errors[0]["error"]["message"]
    assert errors[0]["error"]["type"] == "model_request_failed_error"
    assert f"cassette '{CASSETTE}'" in message
    assert "closest recorded request is interaction #1" in message
    assert "messages[0].content[0].text" in message and "recorded-two" in message
    assert events[-1]["type"] == "session.status_idle"
    assert events[-1]["stop_reason"]["type"] == "retries_exhausted"


def test_the_cassette_is_readable_and_holds_no_secret(
    recorded: tuple[Path, list[dict[str, Any]], str],
) -> None:
    cassettes, _, _ = recorded
    text = (cassettes / f"{CASSETTE}.json").read_text()
    assert SECRET not in text and "s3cr3t" not in text
    assert "x-api-key" not in text.lower() and "authorization" not in text.lower()
    document = json.loads(text)
    assert document["version"] == 1
    interactions = document["interactions"]
    assert len(interactions) == 4  # two turns, each a tool round and a final answer
    first = interactions[0]
    assert first["request"]["endpoint"] == "/v1/messages"
    assert "stream" not in first["request"]["body"] and "cache_control" not in json.dumps(first["request"])
    events = [frame["event"] for frame in first["response"]["events"]]
    assert events[0] == "message_start" and events[-1] == "message_stop"
    assert "content_block_delta" in events
    tool_ids = re.findall(r'"(toolu_[^"]+)"', json.dumps(interactions[1]["request"]))
    assert tool_ids and set(tool_ids) == {"toolu_1"}
