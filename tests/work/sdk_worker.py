"""The SDK's own `EnvironmentWorker`, unmodified, configured as a user would: the standard agent
toolset plus one custom tool. Run in-process by the tests, or as a child process
(`python -m tests.work.sdk_worker URL ENVIRONMENT_ID KEY WORKDIR`) that a test can kill."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path

import anthropic
from anthropic.lib.environments import BetaAnyRunnableTool, EnvironmentWorker
from anthropic.lib.tools import beta_async_tool
from anthropic.lib.tools.agent_toolset import AgentToolContext, beta_agent_toolset_20260401


@beta_async_tool
async def lookup(key: str) -> str:
    """Look something up in the client's records."""
    return f"teal-{key}"


def tools(context: AgentToolContext) -> Sequence[BetaAnyRunnableTool]:
    return [*beta_agent_toolset_20260401(context), lookup]


def worker(
    client: anthropic.AsyncAnthropic, environment_id: str, key: str, workdir: Path
) -> EnvironmentWorker:
    return EnvironmentWorker(
        client,
        environment_id=environment_id,
        environment_key=key,
        tools=tools,
        workdir=workdir,
        max_idle=2.0,
        worker_id=f"test-worker-{workdir.name}",
    )


async def main(url: str, environment_id: str, key: str, workdir: str) -> None:
    async with anthropic.AsyncAnthropic(base_url=url, auth_token=key) as client:
        await worker(client, environment_id, key, Path(workdir)).run()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:5]))
