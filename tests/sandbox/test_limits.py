"""Tool time limits (one computation, capped), interrupts that kill a call and all it started,
a shell freed when the host that ran a call goes away (a worker restart), and fork bombs cleaned
up after their call. Local and real Docker backends, except the fork bomb (Docker only: nothing
contains a host process)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from app.config import Settings
from app.sandbox import SandboxBackend, SandboxSpec, ToolResult
from app.sandbox.docker_backend import DockerBackend
from app.sandbox.limits import time_limit
from app.sandbox.local_backend import LocalBackend
from tests.sandbox.conftest import sandbox_settings
from tests.sandbox.support import bash, call, text

pytestmark = [pytest.mark.timeout(300)]

Factory = Callable[..., Awaitable[tuple[SandboxBackend, str]]]


def test_one_computation_default_override_and_cap() -> None:
    settings = Settings(sandbox_bash_timeout_seconds=7, sandbox_max_tool_seconds=300)
    assert time_limit(settings, "bash", {}) == 7
    assert time_limit(settings, "bash", {"timeout_ms": 2500}) == 2.5
    assert time_limit(settings, "bash", {"timeout_ms": 10**12}) == 300
    for ignored in (0, -5, "9000", 1.5, True, None):
        assert time_limit(settings, "bash", {"timeout_ms": ignored}) == 7
    assert time_limit(settings, "grep", {"timeout_ms": 900_000}) == 60
    assert time_limit(Settings(sandbox_max_tool_seconds=10), "web_fetch", {}) == 10
    assert time_limit(Settings(), "bash", {}) == 120  # the documented default


@pytest.fixture(params=[pytest.param("local"), pytest.param("docker", marks=pytest.mark.docker)])
async def make(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Factory]:
    """Backends of their own settings, each with one fresh sandbox; all removed afterwards."""
    if request.param == "docker":
        request.getfixturevalue("docker_client")  # the base image is built
    made: list[tuple[SandboxBackend, str]] = []

    async def factory(**overrides: Any) -> tuple[SandboxBackend, str]:
        settings = sandbox_settings(tmp_path, **overrides)
        backend: SandboxBackend = (
            DockerBackend(settings) if request.param == "docker" else LocalBackend(settings)
        )
        session_id = made[0][1] if made else f"sesn_{uuid.uuid4().hex[:12]}"
        await backend.ensure(session_id, SandboxSpec(env_id="env_limits"))
        made.append((backend, session_id))
        return backend, session_id

    yield factory
    if made:  # every backend shares the one sandbox: the last one removes it
        await made[-1][0].remove(made[-1][1])
    for backend, _ in made:
        await backend.close()


async def test_the_bash_timeout_setting_is_the_default_limit(make: Factory) -> None:
    backend, sid = await make(sandbox_bash_timeout_seconds=1)
    result = await bash(backend, sid, "echo started; sleep 30")
    assert result.is_error and "started" in text(result)
    assert "timed out after 1 s" in text(result)


async def test_timeout_ms_is_capped(make: Factory) -> None:
    backend, sid = await make(sandbox_max_tool_seconds=1)
    result = await bash(backend, sid, "sleep 30", timeout_ms=3_600_000)
    assert result.is_error and "timed out after 1 s" in text(result)


async def wait_for_file(backend: SandboxBackend, sid: str, path: str) -> None:
    """Poll with `read` (it does not wait for the shell) until the running command wrote `path`."""
    deadline = time.monotonic() + 120
    while (await call(backend, sid, "read", file_path=path)).is_error:
        assert time.monotonic() < deadline, f"{path} never appeared"
        await asyncio.sleep(0.1)


def started_by(tag: str) -> str:
    """A command that leaves a background job, an escaped (setsid) process and a foreground sleep."""
    return f"sleep 6{tag} & setsid sleep 7{tag} & touch started-{tag}; sleep 8{tag}"


async def survivors(backend: SandboxBackend, sid: str, tag: str) -> str:
    out = await bash(backend, sid, f"pgrep -f 'sleep [678]{tag}' || echo none")
    return text(out)


async def test_cancel_kills_the_running_call_and_everything_it_started(make: Factory) -> None:
    backend, sid = await make()
    tag = str(uuid.uuid4().int % 10**6 + 10**6)
    running = asyncio.create_task(bash(backend, sid, started_by(tag)))
    await wait_for_file(backend, sid, f"started-{tag}")
    await backend.cancel(sid)
    result = await asyncio.wait_for(running, 120)  # long before the 120 s of the sleeps
    assert result.is_error and "interrupted" in text(result)
    assert await survivors(backend, sid, tag) == "none"
    assert text(await bash(backend, sid, "echo usable")) == "usable"


async def test_a_host_that_goes_away_mid_call_leaves_no_wedged_shell(make: Factory) -> None:
    """A worker dies during `sleep`: the next worker's calls (and `restart`) answer at once, the
    call's processes are gone and the sandbox counts as idle again (idle stop can fire)."""
    first, sid = await make()
    tag = str(uuid.uuid4().int % 10**6 + 10**6)
    running = asyncio.create_task(bash(first, sid, started_by(tag)))
    await wait_for_file(first, sid, f"started-{tag}")
    await first.close()  # the connection closes, as when the worker process dies
    outcome: ToolResult | BaseException = (await asyncio.gather(running, return_exceptions=True))[0]
    assert isinstance(outcome, ToolResult) and outcome.is_error

    second, _ = await make()
    restarted = await call(second, sid, "bash", restart=True)
    assert text(restarted) == "Shell restarted."
    assert text(await bash(second, sid, "echo next")) == "next"
    assert await survivors(second, sid, tag) == "none"
    assert isinstance(second, DockerBackend | LocalBackend)
    await asyncio.sleep(0.2)
    status = await (await second._channel(sid)).call({"op": "status"}, 10.0)
    assert status["idle_seconds"] > 0  # nothing is running: idle stop counts from now


@pytest.mark.docker
async def test_a_fork_bomb_is_cleaned_up_after_its_call(docker_client: object, tmp_path: Path) -> None:
    """Docker only: nothing would contain a fork bomb of a host process."""
    backend = DockerBackend(sandbox_settings(tmp_path))
    sid = f"sesn_{uuid.uuid4().hex[:12]}"
    try:
        await backend.ensure(sid, SandboxSpec(env_id="env_limits"))
        result = await bash(backend, sid, "bomb() { bomb | bomb & }; bomb; echo launched")
        assert "launched" in text(result)
        deadline = time.monotonic() + 120
        while True:  # killed between calls, and at the latest when the next call starts
            count = int(text(await bash(backend, sid, "ps -e --no-headers | wc -l")).split()[-1])
            if count < 10:
                break
            assert time.monotonic() < deadline, f"{count} processes still running"
            await asyncio.sleep(0.5)
        assert text(await bash(backend, sid, "echo alive")) == "alive"
    finally:
        await backend.remove(sid)
        await backend.close()
