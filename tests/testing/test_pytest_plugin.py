"""The pytest plugin, the way a user meets it: their own small agent program and its test-suite,
run by pytest in a subprocess with nothing but `mas` installed (the plugin comes by entry point)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import docker_engine
from tests.support.server import ServerProcess

SECRET = "sk-ant-api03-" + "plugin" * 8
# Three nested pytest runs, each starting a mas: runs first in parallel runs (tests/conftest.py).
pytestmark = pytest.mark.slow

AGENT_PROGRAM = '''
"""A small agent program: ask about the weather, collect what the agent said and did."""
import anthropic


def ask(client: anthropic.Anthropic, question: str) -> dict:
    env = client.beta.environments.create(name="weather")
    agent = client.beta.agents.create(
        name="forecaster",
        model="claude-sonnet-4-6",
        system="You report the weather. Check with bash.",
        tools=[{"type": "agent_toolset_20260401"}],
    )
    session = client.beta.sessions.create(agent=agent.id, environment_id=env.id)
    said, tool_output, errors = [], [], []
    with client.beta.sessions.events.stream(session.id) as stream:
        client.beta.sessions.events.send(
            session.id, events=[{"type": "user.message", "content": [{"type": "text", "text": question}]}]
        )
        for event in stream:
            if event.type == "agent.message":
                said += [block.text for block in event.content]
            elif event.type == "agent.tool_result":
                tool_output += [block.text for block in event.content or [] if block.type == "text"]
            elif event.type == "session.error":
                errors.append(event.error.message)
            elif event.type == "session.status_idle":
                break
    return {"said": " ".join(said), "tool_output": " ".join(tool_output), "errors": errors}
'''

OFFLINE_TESTS = """
from weather import ask


def test_the_agent_runs_the_tool_it_is_told_to(mas_client):
    answer = ask(mas_client, 'Weather?\\n/tool bash {"command": "echo sunny"}')
    assert answer["errors"] == []
    assert "sunny" in answer["tool_output"]
"""

CASSETTE_TESTS = """
import pytest

from weather import ask

QUESTION = "What is the weather in Paris?"


def test_paris(mas_client):
    answer = ask(mas_client, QUESTION)
    assert answer["errors"] == [], answer["errors"]
    assert "sunny, 21C" in answer["tool_output"]
    assert "It is sunny" in answer["said"]


@pytest.mark.mas_clean
@pytest.mark.mas_cassette("shared/paris")
def test_paris_again_on_a_clean_server(mas_client):
    assert list(mas_client.beta.agents.list()) == []
    assert "sunny, 21C" in ask(mas_client, QUESTION)["tool_output"]
"""

# The upstream's model decides on its own to call a tool, as a real model would for a plain prompt.
UPSTREAM_SCRIPT = {
    "rules": [
        {
            "match": "weather in Paris",
            "responses": [
                {
                    "content": [
                        {"type": "text", "text": "Let me check."},
                        {"type": "tool_use", "name": "bash", "input": {"command": "echo sunny, 21C"}},
                    ]
                },
                {"content": [{"type": "text", "text": "It is sunny and 21C in Paris."}]},
            ],
        }
    ]
}


@pytest.fixture
def agent_project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makepyfile(weather=AGENT_PROGRAM)
    return pytester


@pytest.fixture
def upstream(tmp_path: Path) -> Iterator[ServerProcess]:
    """Another mas whose offline model plays the real API (scripted to call a tool)."""
    script = tmp_path / "script.json"
    script.write_text(json.dumps(UPSTREAM_SCRIPT))
    env = {
        "MAS_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'upstream.db'}",
        "MAS_API_KEYS": "sk-upstream-" + uuid.uuid4().hex,
        "MAS_MODEL_BACKEND": "offline",
        "MAS_OFFLINE_SCRIPT": str(script),
        "MAS_EMBEDDED_WORKER": "false",
        "MAS_LOG_LEVEL": "warning",
    }
    server = ServerProcess(env).start()
    try:
        yield server
    finally:
        server.stop()


def plugin_sandboxes() -> set[str]:
    """Containers of servers the plugin started (their instance label starts with `pytest-`)."""
    client = docker_engine.engine()
    try:
        containers = client.containers.list(all=True, filters={"label": "mas.managed=1"}, ignore_removed=True)
        return {c.name for c in containers if c.labels.get("mas.instance", "").startswith("pytest-")}
    finally:
        client.close()


def test_an_agent_suite_runs_against_the_offline_model(agent_project: pytest.Pytester) -> None:
    agent_project.makepyfile(test_offline=OFFLINE_TESTS)
    result = agent_project.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


@pytest.mark.docker
@pytest.mark.timeout(900)
def test_an_agent_suite_runs_with_docker_sandboxes_and_leaves_none(agent_project: pytest.Pytester) -> None:
    agent_project.makepyfile(test_offline=OFFLINE_TESTS)
    before = plugin_sandboxes()
    result = agent_project.runpytest_subprocess("-p", "no:cacheprovider", "--mas-sandbox=docker")
    result.assert_outcomes(passed=1)
    assert plugin_sandboxes() <= before


@pytest.mark.timeout(1200)  # three pytest runs, each starting a mas: minutes on a loaded machine
def test_an_agent_suite_records_a_cassette_then_replays_it_offline(
    agent_project: pytest.Pytester, upstream: ServerProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    agent_project.makepyfile(test_forecast=CASSETTE_TESTS)
    monkeypatch.setenv("ANTHROPIC_API_KEY", SECRET)  # sent upstream when recording, never stored
    record = agent_project.runpytest_subprocess(
        "-p", "no:cacheprovider", "--mas-model=record", f"--mas-upstream={upstream.url}"
    )
    record.assert_outcomes(passed=2)
    cassettes = agent_project.path / "cassettes"
    assert sorted(p.relative_to(cassettes).as_posix() for p in cassettes.rglob("*.json")) == [
        "shared/paris.json",
        "test_forecast/test_paris.json",
    ]
    assert all(SECRET not in p.read_text() for p in cassettes.rglob("*.json"))

    upstream.stop()
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    replay_args = ("-p", "no:cacheprovider", "--mas-model=replay", f"--mas-upstream={upstream.url}")
    agent_project.runpytest_subprocess(*replay_args).assert_outcomes(passed=2)

    agent_project.makepyfile(test_forecast=CASSETTE_TESTS.replace("in Paris?", "in Rome?"))
    changed = agent_project.runpytest_subprocess(*replay_args)
    changed.assert_outcomes(failed=2)
    assert (
        'recorded "What is the weather in Paris?", requested "What is the weather in Rome?"'
        in changed.stdout.str()
    )


def test_the_plugin_is_inert_unless_its_fixtures_are_used(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_plain="def test_plain(tmp_path):\n    assert not list(tmp_path.parent.glob('mas*'))\n"
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--fixtures")
    result.stdout.fnmatch_lines(["*mas_client*"])
    pytester.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=1)
