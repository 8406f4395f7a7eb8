"""Skills on agents and in sessions: references checked at create/update, pinned at session start."""

from __future__ import annotations

from typing import Any

import anthropic
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from app.skills import references
from tests.agents.factories import TOOLSET, agent_params
from tests.skills.factories import make_skill, skill_files, unique_name
from tests.support.factories import make_environment


def _custom(skill_id: str, version: str | None = None) -> Any:
    return {"type": "custom", "skill_id": skill_id, **({"version": version} if version else {})}


def _message(exc: pytest.ExceptionInfo[anthropic.BadRequestError]) -> str:
    return str(exc.value.body["error"]["message"])  # type: ignore[index]


def _skilled(client: anthropic.Anthropic, *skills: dict[str, Any], **params: Any) -> Any:
    return client.beta.agents.create(**agent_params(tools=[TOOLSET], skills=list(skills), **params))


def test_unknown_skills_and_versions_are_refused(client: anthropic.Anthropic) -> None:
    skill = make_skill(client)

    with pytest.raises(anthropic.BadRequestError) as missing:
        _skilled(client, _custom(skill.id), _custom("skill_missing"))
    with pytest.raises(anthropic.BadRequestError) as version:
        _skilled(client, _custom(skill.id, "skill_version_missing"))
    with pytest.raises(anthropic.BadRequestError) as epoch:
        _skilled(client, _custom(skill.id, "1759178010641129"))

    assert _message(missing) == "skills[1].skill_id: skill skill_missing not found"
    assert _message(version) == f"skills[0].version: skill {skill.id} has no version 'skill_version_missing'"
    assert _message(epoch).endswith("has no version '1759178010641129'")


def test_pinned_versions_by_id_or_epoch_are_echoed(client: anthropic.Anthropic) -> None:
    first, second = make_skill(client), make_skill(client)
    epoch = str(client.beta.skills.versions.retrieve("latest", skill_id=second.id).model_dump()["version"])

    agent = _skilled(client, _custom(first.id, first.latest_version_id), _custom(second.id, epoch))

    assert [(s.skill_id, s.version) for s in agent.skills] == [
        (first.id, first.latest_version_id),
        (second.id, epoch),
    ]


def test_anthropic_skills_are_refused_naming_the_limitation(client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.BadRequestError) as exc:
        _skilled(client, {"type": "anthropic", "skill_id": "xlsx", "version": "latest"})

    assert _message(exc).startswith("skills[0]: Anthropic's prebuilt skills (type 'anthropic', here 'xlsx')")
    assert "upload the skill's files with POST /v1/skills" in _message(exc)


def test_duplicates_and_clashing_names(client: anthropic.Anthropic) -> None:
    skill = make_skill(client)
    name = unique_name()
    twin_a = make_skill(client, name)
    twin_b = make_skill(client, name)

    with pytest.raises(anthropic.BadRequestError) as duplicate:
        _skilled(client, _custom(skill.id), _custom(skill.id, "latest"))
    with pytest.raises(anthropic.BadRequestError) as clash:
        _skilled(client, _custom(twin_a.id), _custom(twin_b.id))

    assert _message(duplicate) == f"skills[1].skill_id: duplicate skill {skill.id!r}"
    assert _message(clash).startswith(
        f"skills[1]: skills {twin_a.id} and {twin_b.id} are both named {name!r}"
    )


def test_update_checks_only_the_skills_it_sends(client: anthropic.Anthropic) -> None:
    skill = make_skill(client)
    agent = _skilled(client, _custom(skill.id))
    with pytest.raises(anthropic.BadRequestError, match="skill skill_gone not found"):
        client.beta.agents.update(agent.id, skills=[_custom("skill_gone")])
    client.beta.skills.delete(skill.id)

    renamed = client.beta.agents.update(agent.id, name="renamed")

    assert renamed.version == 2 and [s.skill_id for s in renamed.skills] == [skill.id]


def test_a_session_pins_latest_when_it_starts(client: anthropic.Anthropic) -> None:
    name = unique_name()
    skill = make_skill(client, name)
    agent = _skilled(client, _custom(skill.id))
    environment = make_environment(client)

    session = client.beta.sessions.create(agent=agent.id, environment_id=environment.id)
    newer = client.beta.skills.versions.create(skill.id, files=skill_files(name))
    later = client.beta.sessions.create(agent=agent.id, environment_id=environment.id)

    pinned = [(s.type, s.skill_id, s.version) for s in session.agent.skills]
    assert pinned == [("custom", skill.id, skill.latest_version_id)]
    assert client.beta.sessions.retrieve(session.id).agent.skills == session.agent.skills
    assert [s.version for s in later.agent.skills] == [newer.id]
    assert [s.version for s in client.beta.agents.retrieve(agent.id).skills] == ["latest"]


def test_overrides_and_roster_agents_are_pinned_too(client: anthropic.Anthropic) -> None:
    base, override, member_skill = make_skill(client), make_skill(client), make_skill(client)
    member = _skilled(client, _custom(member_skill.id), name="member")
    lead = _skilled(client, _custom(base.id), multiagent={"type": "coordinator", "agents": [member.id]})
    environment = make_environment(client)

    session = client.beta.sessions.create(
        agent={"type": "agent_with_overrides", "id": lead.id, "skills": [_custom(override.id)]},
        environment_id=environment.id,
    )

    assert [(s.skill_id, s.version) for s in session.agent.skills] == [
        (override.id, override.latest_version_id)
    ]
    roster = session.agent.multiagent
    assert roster is not None
    member_copy = roster.agents[0]  # type: ignore[union-attr]
    assert [(s.skill_id, s.version) for s in member_copy.skills] == [  # type: ignore[union-attr]
        (member_skill.id, member_skill.latest_version_id)
    ]


def test_skills_that_no_longer_resolve_refuse_the_session(client: anthropic.Anthropic) -> None:
    skill = make_skill(client)
    agent = _skilled(client, _custom(skill.id))
    environment = make_environment(client)
    client.beta.skills.delete(skill.id)

    with pytest.raises(anthropic.BadRequestError) as exc:
        client.beta.sessions.create(agent=agent.id, environment_id=environment.id)
    with pytest.raises(anthropic.BadRequestError) as override:
        client.beta.sessions.create(
            agent={"type": "agent_with_overrides", "id": agent.id, "skills": [_custom("skill_nope")]},
            environment_id=environment.id,
        )

    assert (
        _message(exc)
        == f"Could not resolve one or more skills: agent.skills[0].skill_id: skill {skill.id} not found"
    )
    assert _message(override).endswith("agent.skills[0].skill_id: skill skill_nope not found")


def test_skills_need_the_read_tool_at_session_create(client: anthropic.Anthropic) -> None:
    skill = make_skill(client)
    no_read = {"type": "agent_toolset_20260401", "configs": [{"name": "read", "enabled": False}]}
    agent = client.beta.agents.create(**agent_params(tools=[no_read], skills=[_custom(skill.id)]))

    with pytest.raises(anthropic.BadRequestError) as exc:
        client.beta.sessions.create(agent=agent.id, environment_id=make_environment(client).id)

    assert _message(exc).startswith("agent.tools: Missing required tool: skills require the read tool")


async def test_describe_lists_what_the_system_prompt_shows(
    client: anthropic.Anthropic, db: AsyncSession
) -> None:
    name = unique_name("notes")
    skill = make_skill(client, name)
    session = client.beta.sessions.create(
        agent=_skilled(client, _custom(skill.id)).id, environment_id=make_environment(client).id
    )

    described = await references.describe(
        db, [{"type": s.type, "skill_id": s.skill_id, "version": s.version} for s in session.agent.skills]
    )

    assert [(d.skill_id, d.version_id, d.name, d.directory) for d in described] == [
        (skill.id, skill.latest_version_id, name, f"/workspace/skills/{name}")
    ]
    assert described[0].description == "Greets people. Use when someone says hello."
