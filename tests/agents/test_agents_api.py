"""/v1/agents through the real SDK (strict response validation) and raw HTTP, on each backend."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import anthropic
import httpx
import pytest

from tests.agents.factories import TOOLSET, agent_params, custom_tool, mcp_pair
from tests.skills.factories import make_skill

BETA = {"beta": "true"}


def _error(exc: pytest.ExceptionInfo[anthropic.APIStatusError]) -> str:
    body = exc.value.body
    assert isinstance(body, dict)
    return str(body["error"]["message"])


# --- create and defaults ------------------------------------------------------------------------


def test_create_minimal_materialises_every_default(http: httpx.Client) -> None:
    response = http.post(
        "/v1/agents", params=BETA, json={"name": "My First Agent", "model": "claude-sonnet-4-6"}
    )

    assert response.status_code == 200
    body = response.json()
    assert body["id"].startswith("agent_")
    assert body["type"] == "agent"
    assert body["version"] == 1
    assert body["model"] == {
        "id": "claude-sonnet-4-6",
        "effort": {"type": "high"},
        "speed": "standard",
        "inference_geo": None,
    }
    assert body["tools"] == [] and body["mcp_servers"] == [] and body["skills"] == []
    assert body["execution_identity"] == {"type": "service_account"}
    assert body["multiagent"] is None and body["archived_at"] is None
    assert body["metadata"] == {} and body["description"] is None and body["system"] is None
    assert body["created_at"] == body["updated_at"]


def test_create_resolves_tool_defaults(client: anthropic.Anthropic) -> None:
    toolset = {
        "type": "agent_toolset_20260401",
        "default_config": {"permission_policy": {"type": "always_ask"}},
        "configs": [
            {"name": "bash", "enabled": False},
            {"name": "read", "permission_policy": {"type": "always_allow"}},
        ],
    }
    agent = client.beta.agents.create(
        **agent_params(tools=[toolset, custom_tool(), *mcp_pair()[0]], mcp_servers=mcp_pair()[1])
    )

    tools = [tool.model_dump(exclude_none=True) for tool in agent.tools]
    assert tools[0] == {
        "type": "agent_toolset_20260401",
        "default_config": {"enabled": True, "permission_policy": {"type": "always_ask"}},
        "configs": [
            {"type": "bash", "name": "bash", "enabled": False, "permission_policy": {"type": "always_ask"}},
            {"type": "read", "name": "read", "enabled": True, "permission_policy": {"type": "always_allow"}},
        ],
    }
    assert tools[1]["name"] == "get_weather" and tools[1]["input_schema"]["required"] == ["city"]
    assert tools[2]["default_config"] == {"enabled": True, "permission_policy": {"type": "always_ask"}}
    assert tools[2]["configs"] == [
        {"name": "list_repos", "enabled": True, "permission_policy": {"type": "always_ask"}}
    ]


def test_create_echoes_model_skills_identity_and_web_settings(client: anthropic.Anthropic) -> None:
    unpinned, pinned = make_skill(client), make_skill(client)
    web_fetch = {
        "name": "web_fetch",
        "allowed_domains": ["docs.example.com"],
        "max_content_tokens": 5000,
        "url_sources": {
            "user_input": "none",
            "server_tool_results": {
                "type": "only",
                "tools": [{"type": "tool_reference", "name": "web_search"}],
            },
        },
    }
    web_search = {
        "name": "web_search",
        "blocked_domains": ["ads.example.com/path"],
        "user_location": {"type": "approximate", "country": "FR"},
    }
    agent = client.beta.agents.create(
        **agent_params(
            model={
                "id": "claude-opus-4-8",
                "effort": {"type": "low"},
                "speed": "fast",
                "inference_geo": "us",
            },
            tools=[{"type": "agent_toolset_20260401", "configs": [web_fetch, web_search]}],
            skills=[
                {"type": "custom", "skill_id": unpinned.id},
                {"type": "custom", "skill_id": pinned.id, "version": pinned.latest_version_id},
            ],
            execution_identity={"type": "aws_role", "role_arn": "arn:aws:iam::123456789012:role/runner"},
        )
    )

    assert agent.model.model_dump(exclude_none=True) == {
        "id": "claude-opus-4-8",
        "effort": {"type": "low"},
        "speed": "fast",
        "inference_geo": "us",
    }
    assert [(s.skill_id, s.version) for s in agent.skills] == [
        (unpinned.id, "latest"),
        (pinned.id, pinned.latest_version_id),
    ]
    assert agent.execution_identity.type == "aws_role"
    fetch, search = (config.model_dump() for config in agent.tools[0].configs)  # type: ignore[union-attr]
    assert fetch["url_sources"] == {
        "user_input": {"type": "none"},
        "client_tool_results": None,
        "server_tool_results": {"type": "only", "tools": [{"type": "tool_reference", "name": "web_search"}]},
    }
    assert fetch["allowed_domains"] == ["docs.example.com"] and fetch["max_content_tokens"] == 5000
    assert (
        search["blocked_domains"] == ["ads.example.com/path"] and search["user_location"]["country"] == "FR"
    )


def test_sdk_all_params_example(client: anthropic.Anthropic) -> None:
    roster_member = client.beta.agents.create(**agent_params())
    agent = client.beta.agents.create(
        model="claude-sonnet-4-6",
        name="My First Agent",
        description="A general-purpose starter agent.",
        mcp_servers=[
            {
                "name": "example-mcp",
                "type": "url",
                "url": "https://example-server.modelcontextprotocol.io/sse",
            }
        ],
        metadata={"foo": "bar"},
        multiagent={"type": "coordinator", "agents": [roster_member.id, {"type": "self"}]},
        # The SDK's example names Anthropic's `xlsx`, which a self-hosted server cannot ship.
        skills=[{"skill_id": make_skill(client).id, "type": "custom"}],
        system=(
            "You are a general-purpose agent that can research, write code, run commands, "
            "and use connected tools to complete the user's task end to end."
        ),
        tools=[
            {
                "type": "agent_toolset_20260401",
                "configs": [{"name": "bash", "enabled": True, "permission_policy": {"type": "always_allow"}}],
                "default_config": {"enabled": True, "permission_policy": {"type": "always_allow"}},
            },
            # The SDK's example omits this and so breaks its own rule that every server is referenced.
            {"type": "mcp_toolset", "mcp_server_name": "example-mcp"},
        ],
        betas=["message-batches-2024-09-24"],
    )

    assert agent.multiagent is not None
    assert [e.model_dump() for e in agent.multiagent.agents] == [  # type: ignore[union-attr]
        {"type": "agent", "id": roster_member.id, "version": 1},
        {"type": "agent", "id": agent.id, "version": 1},
    ]
    updated = client.beta.agents.update(
        agent.id,
        version=1,
        name="name",
        model={
            "id": "claude-opus-4-8",
            "effort": "low",
            "inference_geo": "inference_geo",
            "speed": "standard",
        },
        metadata={"foo": "string"},
    )
    assert updated.version == 2 and updated.model.effort is not None and updated.model.effort.type == "low"
    assert updated.multiagent is not None
    assert updated.multiagent.agents[1].model_dump() == {"type": "agent", "id": agent.id, "version": 2}  # type: ignore[union-attr]
    assert client.beta.agents.update(agent.id).version == 2


# --- update -------------------------------------------------------------------------------------


def test_update_semantics(client: anthropic.Anthropic) -> None:
    agent = client.beta.agents.create(
        **agent_params(
            description="d",
            system="s",
            tools=[TOOLSET],
            skills=[{"type": "custom", "skill_id": make_skill(client).id}],
            metadata={"a": "1", "b": "2"},
        )
    )

    updated = client.beta.agents.update(
        agent.id, version=1, system=None, description="", metadata={"a": None, "c": "3"}, skills=[]
    )

    assert updated.version == 2
    assert updated.system is None and updated.description is None
    assert updated.metadata == {"b": "2", "c": "3"}
    assert updated.skills == [] and len(updated.tools) == 1 and updated.name == agent.name
    cleared = client.beta.agents.update(agent.id, tools=None, execution_identity=None)
    assert cleared.tools == [] and cleared.version == 3


def test_update_model_effort_rules(client: anthropic.Anthropic) -> None:
    agent = client.beta.agents.create(
        **agent_params(model={"id": "claude-opus-4-8", "effort": "max", "inference_geo": "eu"})
    )

    same_id = client.beta.agents.update(agent.id, model={"id": "claude-opus-4-8"})
    new_id = client.beta.agents.update(agent.id, model="claude-sonnet-4-6")

    assert same_id.model.effort is not None and same_id.model.effort.type == "max"
    assert same_id.model.inference_geo is None
    assert new_id.model.effort is not None and new_id.model.effort.type == "high"


def test_update_that_changes_nothing_makes_no_version(client: anthropic.Anthropic) -> None:
    agent = client.beta.agents.create(**agent_params(system="same", metadata={"k": "v"}))

    again = client.beta.agents.update(agent.id, system="same", metadata={"k": "v"}, tools=[])

    assert again.version == 1 and again.updated_at == agent.updated_at
    assert [v.version for v in client.beta.agents.versions.list(agent.id)] == [1]


def test_stale_version_is_a_409_not_worth_retrying(client: anthropic.Anthropic, http: httpx.Client) -> None:
    agent = client.beta.agents.create(**agent_params())
    client.beta.agents.update(agent.id, version=1, system="v2")

    with pytest.raises(anthropic.ConflictError) as exc:
        client.beta.agents.update(agent.id, version=1, system="lost")
    raw = http.post(f"/v1/agents/{agent.id}", params=BETA, json={"version": 1, "system": "lost"})

    assert _error(exc) == "Concurrent modification detected. Please fetch the latest version and retry."
    assert exc.value.response.headers["x-should-retry"] == "false"
    assert raw.status_code == 409 and raw.json()["error"]["type"] == "invalid_request_error"
    assert client.beta.agents.retrieve(agent.id).version == 2


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"name": None}, "name: cannot be cleared"),
        ({"name": ""}, "name: String should have at least 1 character"),
        ({"model": None}, "model: cannot be cleared"),
        ({"version": 0}, "version: Input should be greater than or equal to 1"),
        ({"metadata": {f"k{i}": "v" for i in range(17)}}, "metadata: at most 16"),
    ],
)
def test_update_rejects(
    http: httpx.Client, client: anthropic.Anthropic, body: dict[str, Any], message: str
) -> None:
    agent = client.beta.agents.create(**agent_params())

    response = http.post(f"/v1/agents/{agent.id}", json=body)

    assert response.status_code == 400
    assert response.json()["error"]["message"].startswith(message)


# --- retrieve, archive, errors ------------------------------------------------------------------


def test_retrieve_historical_versions(client: anthropic.Anthropic) -> None:
    agent = client.beta.agents.create(**agent_params(system="one"))
    client.beta.agents.update(agent.id, system="two")

    assert client.beta.agents.retrieve(agent.id, version=1).system == "one"
    assert client.beta.agents.retrieve(agent.id).system == "two"
    with pytest.raises(anthropic.NotFoundError) as exc:
        client.beta.agents.retrieve(agent.id, version=3)
    assert _error(exc) == "Agent version not found."


def test_unknown_agent_is_a_404_with_matching_request_id(http: httpx.Client) -> None:
    response = http.get("/v1/agents/agent_011CZkYpogX7uDKUyvBTophP", params=BETA)

    body = response.json()
    assert response.status_code == 404
    assert body["type"] == "error" and body["error"]["type"] == "not_found_error"
    assert response.headers["request-id"] == body["request_id"]


def test_archive(client: anthropic.Anthropic) -> None:
    agent = client.beta.agents.create(**agent_params())

    archived = client.beta.agents.archive(agent.id)

    assert archived.archived_at is not None
    assert client.beta.agents.archive(agent.id).archived_at == archived.archived_at
    with pytest.raises(anthropic.BadRequestError) as exc:
        client.beta.agents.update(agent.id, system="x")
    assert _error(exc) == "Cannot modify archived agent"
    assert client.beta.agents.retrieve(agent.id).archived_at == archived.archived_at
    assert [v.version for v in client.beta.agents.versions.list(agent.id)] == [1]
    listed = [a.id for a in client.beta.agents.list(created_at_gte=agent.created_at)]
    assert agent.id not in listed
    assert agent.id in [
        a.id for a in client.beta.agents.list(created_at_gte=agent.created_at, include_archived=True)
    ]


# --- lists --------------------------------------------------------------------------------------


def test_list_pages_newest_first(client: anthropic.Anthropic, http: httpx.Client) -> None:
    start = datetime.now(UTC)
    ids = [client.beta.agents.create(**agent_params(name=f"page-{i}")).id for i in range(5)]

    first = client.beta.agents.list(created_at_gte=start, limit=2)
    every = [agent.id for agent in first]  # auto-paginates through next_page
    raw = http.get("/v1/agents", params={"created_at[gte]": start.isoformat(), "limit": 2})
    last = http.get("/v1/agents", params={"created_at[gte]": start.isoformat(), "limit": 5})

    assert [a.id for a in first.data] == ids[::-1][:2]
    assert every == ids[::-1]
    assert raw.json()["next_page"].startswith("page_")
    assert last.json()["next_page"] is None and len(last.json()["data"]) == 5
    upto = [
        a.id
        for a in client.beta.agents.list(
            created_at_gte=start, created_at_lte=client.beta.agents.retrieve(ids[1]).created_at
        )
    ]
    assert upto == [ids[1], ids[0]]


def test_versions_list_pages_newest_first(client: anthropic.Anthropic) -> None:
    agent = client.beta.agents.create(**agent_params())
    for i in range(4):
        client.beta.agents.update(agent.id, system=f"s{i}")

    page = client.beta.agents.versions.list(agent.id, limit=2)

    assert [v.version for v in page.data] == [5, 4]
    assert [v.version for v in page] == [5, 4, 3, 2, 1]
    assert [v.system for v in page][-1] is None


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"limit": 0}, "limit: Input should be greater than or equal to 1"),
        ({"limit": 101}, "limit: Input should be less than or equal to 100"),
        ({"page": "garbage"}, "invalid page cursor"),
        ({"created_at[gte]": "yesterday"}, "created_at[gte]: invalid datetime"),
    ],
)
def test_list_rejects_bad_parameters(http: httpx.Client, params: dict[str, Any], message: str) -> None:
    response = http.get("/v1/agents", params=params)

    assert response.status_code == 400
    assert response.json()["error"]["message"].startswith(message)


# --- the docs' curl calls -----------------------------------------------------------------------


def test_docs_curl_flow(http: httpx.Client) -> None:
    created = http.post(
        "/v1/agents?beta=true",
        json={
            "name": "Coding Assistant",
            "model": "claude-sonnet-4-6",
            "system": "You are a helpful coding agent.",
            "tools": [{"type": "agent_toolset_20260401"}],
        },
    )
    agent = created.json()
    updated = http.post(
        f"/v1/agents/{agent['id']}?beta=true", json={"version": agent["version"], "system": "Be terse."}
    )
    versions = http.get(f"/v1/agents/{agent['id']}/versions?beta=true")
    archived = http.post(f"/v1/agents/{agent['id']}/archive?beta=true")

    assert created.status_code == 200 and created.headers["content-type"] == "application/json"
    assert agent["tools"] == [
        {
            "type": "agent_toolset_20260401",
            "default_config": {"enabled": True, "permission_policy": {"type": "always_allow"}},
            "configs": [],
        }
    ]
    assert updated.json()["version"] == 2
    assert [v["version"] for v in versions.json()["data"]] == [2, 1] and versions.json()["next_page"] is None
    assert archived.json()["archived_at"] is not None
