"""The agent interface sessions use: resolve_session_agent and resolve_tools_update."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anthropic
import pytest
from anthropic.types.beta import BetaManagedAgentsSessionAgent
from sqlalchemy.ext.asyncio import AsyncSession

from app.agents import service
from app.db.engine import Database
from app.errors import InvalidRequest, NotFound
from tests.agents.factories import TOOLSET, agent_params, custom_tool, mcp_pair, toolset_with
from tests.skills.factories import make_skill


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[AsyncSession]:
    database = Database(database_url)
    try:
        async with database.read() as session:
            yield session
    finally:
        await database.dispose()


def _skilled_agent(client: anthropic.Anthropic, **overrides: Any) -> Any:
    tools, servers = mcp_pair()
    return client.beta.agents.create(
        **agent_params(
            model={"id": "claude-opus-4-8", "effort": "low"},
            system="base",
            tools=[TOOLSET, *tools],
            mcp_servers=servers,
            skills=[{"type": "custom", "skill_id": make_skill(client).id}],
            **overrides,
        )
    )


async def test_string_and_pinned_references(client: anthropic.Anthropic, db: AsyncSession) -> None:
    agent = _skilled_agent(client)
    client.beta.agents.update(agent.id, system="second")

    latest = await service.resolve_session_agent(db, agent.id)
    pinned = await service.resolve_session_agent(db, {"type": "agent", "id": agent.id, "version": 1})

    assert latest[:2] == (agent.id, 2) and latest[2]["system"] == "second"
    assert pinned[:2] == (agent.id, 1) and pinned[2]["system"] == "base"
    snapshot = BetaManagedAgentsSessionAgent.model_validate(pinned[2])
    assert snapshot.version == 1 and snapshot.model.effort is not None and snapshot.model.effort.type == "low"
    assert set(pinned[2]) == {
        "type",
        "id",
        "version",
        "name",
        "description",
        "system",
        "model",
        "tools",
        "mcp_servers",
        "skills",
        "execution_identity",
        "multiagent",
    }


async def test_overrides_replace_whole(client: anthropic.Anthropic, db: AsyncSession) -> None:
    agent = _skilled_agent(client)

    _, _, snapshot = await service.resolve_session_agent(
        db,
        {
            "type": "agent_with_overrides",
            "id": agent.id,
            "model": {"id": "claude-sonnet-4-6", "effort": "max"},
            "system": None,
            "tools": [TOOLSET, custom_tool()],
            "mcp_servers": [],
            "skills": [],
        },
    )

    assert snapshot["model"]["effort"] == {"type": "high"}  # an override's effort is ignored
    assert snapshot["system"] is None and snapshot["skills"] == [] and snapshot["mcp_servers"] == []
    assert [tool["type"] for tool in snapshot["tools"]] == ["agent_toolset_20260401", "custom"]


@pytest.mark.parametrize(
    ("ref", "error", "message"),
    [
        ({"version": 9}, NotFound, "agent.version: 9 not found"),
        ({"id": "agent_missing"}, NotFound, "agent: Agent agent_missing not found."),
        ({"type": "agent_with_overrides", "model": None}, InvalidRequest, "agent.model: cannot be null"),
        (
            {"type": "agent_with_overrides", "tools": []},
            InvalidRequest,
            "agent.mcp_servers[0]: MCP server 'github'",
        ),
        (
            {"type": "agent_with_overrides", "tools": [], "mcp_servers": []},
            InvalidRequest,
            "agent.tools: Missing required tool",
        ),
        (
            {"type": "agent_with_overrides", "mcp_servers": []},
            InvalidRequest,
            "agent.tools[1].mcp_server_name: no MCP server",
        ),
        (
            {"type": "agent_with_overrides", "tools": [toolset_with({"name": "python"})]},
            InvalidRequest,
            "agent.tools[0].configs[0].name: Input should be",
        ),
        (
            {"type": "agent_with_overrides", "skills": [{"type": "x", "skill_id": "a"}]},
            InvalidRequest,
            "agent.skills[0].type: Input should be",
        ),
        (
            {"type": "unknown"},
            InvalidRequest,
            "agent.type: Input should be 'agent' or 'agent_with_overrides'",
        ),
    ],
)
async def test_rejections(
    client: anthropic.Anthropic, db: AsyncSession, ref: dict[str, Any], error: type[Exception], message: str
) -> None:
    agent = _skilled_agent(client)

    with pytest.raises(error) as exc:
        await service.resolve_session_agent(db, {"type": "agent", "id": agent.id, **ref})

    assert str(exc.value).startswith(message)
    if message.startswith("agent.model"):
        assert exc.value.details == {"error_code": "agent_model_required"}  # type: ignore[attr-defined]


async def test_empty_id_is_a_400(db: AsyncSession) -> None:
    with pytest.raises(InvalidRequest, match=r"^agent\.id: String should have at least 1 character"):
        await service.resolve_session_agent(db, "")


async def test_archived_agents_cannot_start_sessions(client: anthropic.Anthropic, db: AsyncSession) -> None:
    agent = client.beta.agents.create(**agent_params())
    client.beta.agents.archive(agent.id)

    with pytest.raises(InvalidRequest, match=f"agent: Agent {agent.id} is archived."):
        await service.resolve_session_agent(db, agent.id)


async def test_roster_agents_are_expanded(client: anthropic.Anthropic, db: AsyncSession) -> None:
    member = client.beta.agents.create(**agent_params(name="member", system="helps"))
    lead = client.beta.agents.create(
        **agent_params(multiagent={"type": "coordinator", "agents": [member.id, {"type": "self"}]})
    )

    _, _, snapshot = await service.resolve_session_agent(db, lead.id)

    roster = BetaManagedAgentsSessionAgent.model_validate(snapshot).multiagent
    assert roster is not None
    assert [(a.id, a.name) for a in roster.agents] == [(member.id, "member"), (lead.id, "test agent")]  # type: ignore[union-attr]


async def test_tools_update(client: anthropic.Anthropic, db: AsyncSession) -> None:
    agent = _skilled_agent(client)
    _, _, snapshot = await service.resolve_session_agent(db, agent.id)

    replaced = service.resolve_tools_update(
        snapshot, {"tools": [toolset_with({"name": "bash", "enabled": False})], "mcp_servers": None}
    )
    with pytest.raises(InvalidRequest, match=r"^agent\.tools\[1\]\.mcp_server_name: no MCP server"):
        service.resolve_tools_update(snapshot, {"mcp_servers": []})
    with pytest.raises(InvalidRequest, match=r"^agent\.tools: Missing required tool"):
        service.resolve_tools_update(snapshot, {"tools": [], "mcp_servers": []})

    toolset = replaced["tools"][0]
    assert toolset["type"] == "agent_toolset_20260401" and toolset["configs"][0]["enabled"] is False
    assert replaced["mcp_servers"] == []
    assert replaced["skills"] == snapshot["skills"] and replaced["model"] == snapshot["model"]
    assert service.resolve_tools_update(snapshot, {}) == snapshot
