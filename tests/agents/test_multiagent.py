"""multiagent rosters: references resolved to pinned versions, depth limit, and the 20261001 merge."""

from __future__ import annotations

from typing import Any

import anthropic
import pytest

from tests.agents.factories import agent_params


def _message(exc: pytest.ExceptionInfo[anthropic.BadRequestError]) -> str:
    return str(exc.value.body["error"]["message"])  # type: ignore[index]


def _coordinator(*agents: Any) -> Any:
    return {"type": "coordinator", "agents": list(agents)}


def test_roster_pins_versions(client: anthropic.Anthropic) -> None:
    member = client.beta.agents.create(**agent_params())
    client.beta.agents.update(member.id, system="v2")

    roster = _coordinator(
        {"type": "agent", "id": member.id, "version": 1}, {"type": "advisor", "model": "claude-opus-4-8"}
    )
    lead = client.beta.agents.create(**agent_params(multiagent=roster))
    latest = client.beta.agents.create(**agent_params(multiagent=_coordinator(member.id)))

    assert lead.multiagent is not None
    assert [a.model_dump() for a in lead.multiagent.agents] == [  # type: ignore[union-attr]
        {"type": "agent", "id": member.id, "version": 1},
        {"type": "advisor", "model": "claude-opus-4-8"},
    ]
    assert latest.multiagent is not None and latest.multiagent.agents[0].version == 2  # type: ignore[union-attr]


@pytest.mark.parametrize("problem", ["archived", "nested", "version"])
def test_roster_rejects_unusable_agents(client: anthropic.Anthropic, problem: str) -> None:
    member = client.beta.agents.create(**agent_params())
    entry: Any = member.id
    if problem == "archived":
        client.beta.agents.archive(member.id)
    elif problem == "nested":
        client.beta.agents.update(member.id, multiagent=_coordinator({"type": "self"}))
    else:
        entry = {"type": "agent", "id": member.id, "version": 7}

    with pytest.raises(anthropic.BadRequestError) as exc:
        client.beta.agents.create(**agent_params(multiagent=_coordinator(entry)))

    expected = {
        "archived": f"multiagent.agents[0].id: agent {member.id} is archived",
        "nested": f"multiagent.agents[0].id: agent {member.id} has multiagent set itself",
        "version": f"multiagent.agents[0].version: version 7 of agent {member.id} not found",
    }[problem]
    assert _message(exc).startswith(expected)


def test_multiagent_20261001_defaults_and_merge(client: anthropic.Anthropic) -> None:
    member = client.beta.agents.create(**agent_params())
    agent = client.beta.agents.create(**agent_params(multiagent={"type": "multiagent_20261001"}))
    enabled = {"type": "enabled", "inline_agents": {"type": "enabled"}, "predefined_agents": []}
    assert agent.multiagent is not None
    assert agent.multiagent.model_dump() == {
        "type": "multiagent_20261001",
        "advisor": {"type": "disabled"},
        "subagents": enabled,
        "workflows": enabled,
    }

    with_members = client.beta.agents.update(
        agent.id,
        multiagent={
            "type": "multiagent_20261001",
            "subagents": {"type": "enabled", "predefined_agents": [member.id]},
        },
    )
    merged = client.beta.agents.update(
        agent.id,
        multiagent={
            "type": "multiagent_20261001",
            "advisor": {"type": "enabled", "model": "claude-opus-4-8"},
            "subagents": {"type": "enabled", "inline_agents": {"type": "disabled"}},
            "workflows": {"type": "disabled"},
        },
    )

    assert with_members.version == 2
    dumped = merged.multiagent.model_dump()  # type: ignore[union-attr]
    assert dumped["advisor"] == {"type": "enabled", "model": "claude-opus-4-8"}
    assert dumped["subagents"] == {
        "type": "enabled",
        "inline_agents": {"type": "disabled"},
        "predefined_agents": [{"type": "agent", "id": member.id, "version": 1}],
    }
    assert dumped["workflows"] == {"type": "disabled"}
    assert client.beta.agents.update(agent.id, multiagent=None).multiagent is None
