"""Plain factory functions: agents, environments and sessions made through the real SDK."""

from __future__ import annotations

import uuid
from typing import Any

import anthropic
from anthropic.types.beta import BetaEnvironment, BetaManagedAgentsAgent, BetaManagedAgentsSession
from anthropic.types.beta.sessions import BetaManagedAgentsFileResource as FileResource
from anthropic.types.beta.sessions import BetaManagedAgentsGitHubRepositoryResource as RepositoryResource

from app.events.types import ContentBlock

MODEL = "claude-sonnet-4-6"


def text(value: str) -> ContentBlock:
    return {"type": "text", "text": value}


def user_message(value: str = "hello") -> dict[str, Any]:
    return {"type": "user.message", "content": [text(value)]}


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def make_agent(client: anthropic.Anthropic, **params: Any) -> BetaManagedAgentsAgent:
    return client.beta.agents.create(**{"name": _name("agent"), "model": MODEL, **params})


def make_environment(client: anthropic.Anthropic, **params: Any) -> BetaEnvironment:
    return client.beta.environments.create(**{"name": _name("env"), **params})


def make_session(
    client: anthropic.Anthropic,
    agent: str | dict[str, Any] | None = None,
    environment_id: str | None = None,
    **params: Any,
) -> BetaManagedAgentsSession:
    agent = agent if agent is not None else make_agent(client).id
    environment_id = environment_id or make_environment(client).id
    return client.beta.sessions.create(agent=agent, environment_id=environment_id, **params)  # type: ignore[arg-type]


async def make_session_async(
    client: anthropic.AsyncAnthropic,
    agent: str | dict[str, Any] | None = None,
    environment_id: str | None = None,
    **params: Any,
) -> BetaManagedAgentsSession:
    if agent is None:
        agent = (await client.beta.agents.create(name=_name("agent"), model=MODEL)).id
    if environment_id is None:
        environment_id = (await client.beta.environments.create(name=_name("env"))).id
    return await client.beta.sessions.create(agent=agent, environment_id=environment_id, **params)  # type: ignore[arg-type]


def resource_id(resource: object) -> str:
    """A file or repository resource's id (memory-store resources have none in SDK 2.14)."""
    assert isinstance(resource, FileResource | RepositoryResource), resource
    return resource.id
