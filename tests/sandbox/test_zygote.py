"""The local backend starts its tool servers by forking a zygote, not a new interpreter each:
every session still gets a server process of its own, detached, that outlives the backend; a
zygote that died is started again; the zygote refuses what it must not run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from app.sandbox import SandboxSpec, ToolRequest
from app.sandbox.local_backend import LocalBackend
from tests.sandbox.conftest import sandbox_settings

SERVER = Path(__file__).resolve().parents[2] / "sandbox" / "toolserver"


def _sid() -> str:
    return f"sesn_{uuid.uuid4().hex[:12]}"


def _server_pid(backend: LocalBackend, sid: str) -> int:
    return int((backend.root / sid / "server.pid").read_text())


async def _pwd(backend: LocalBackend, sid: str) -> str:
    result = await backend.execute(sid, ToolRequest("bash", {"command": "pwd; echo $$"}))
    assert not result.is_error, result.content
    return str(result.content[0]["text"])


async def test_each_session_gets_its_own_server_and_shell(state_dir: Path) -> None:
    backend = LocalBackend(sandbox_settings(state_dir))
    first, second = _sid(), _sid()
    try:
        await backend.ensure(first, SandboxSpec(env_id="env_test"))
        await backend.ensure(second, SandboxSpec(env_id="env_test"))
        assert _server_pid(backend, first) != _server_pid(backend, second)
        one, two = await _pwd(backend, first), await _pwd(backend, second)
        assert one.split()[0] == backend.workspace(first)
        assert two.split()[0] == backend.workspace(second)
        assert one.split()[1] != two.split()[1]  # two shells
    finally:
        await backend.remove(first)
        await backend.remove(second)
        await backend.close()


async def test_servers_outlive_the_backend_and_a_new_one_reattaches(state_dir: Path) -> None:
    settings = sandbox_settings(state_dir)
    backend = LocalBackend(settings)
    sid = _sid()
    await backend.ensure(sid, SandboxSpec(env_id="env_test"))
    await backend.execute(sid, ToolRequest("bash", {"command": "export KEPT=yes"}))
    pid = _server_pid(backend, sid)
    await backend.close()  # ends the zygote, not the servers it started
    os.kill(pid, 0)
    again = LocalBackend(settings)
    try:
        result = await again.execute(sid, ToolRequest("bash", {"command": "echo $KEPT"}))
        assert result.content[0]["text"].strip() == "yes"
        assert _server_pid(again, sid) == pid
    finally:
        await again.remove(sid)
        await again.close()


async def test_a_zygote_that_died_is_started_again(state_dir: Path) -> None:
    backend = LocalBackend(sandbox_settings(state_dir))
    first, second = _sid(), _sid()
    try:
        await backend.ensure(first, SandboxSpec(env_id="env_test"))
        zygote = backend._zygote._proc
        assert zygote is not None
        zygote.send_signal(signal.SIGKILL)
        zygote.wait(timeout=30)
        await backend.ensure(second, SandboxSpec(env_id="env_test"))
        assert (await _pwd(backend, second)).split()[0] == backend.workspace(second)
    finally:
        await backend.remove(first)
        await backend.remove(second)
        await backend.close()


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("not json", {"error": "expected a JSON array of strings"}),
        ('{"socket": "x"}', {"error": "expected a JSON array of strings"}),
        (
            '["--socket", "x", "--workspace", "y", "--spill-dir", "z"]',
            {"error": "the zygote starts detached servers only"},
        ),
        ('["--detach", "--no-such-flag"]', {"status": 2}),  # argparse's usage error, as a new process
    ],
)
def test_the_zygote_refuses_what_it_must_not_run(line: str, expected: dict[str, object]) -> None:
    done = subprocess.run(
        [sys.executable, str(SERVER), "--zygote"],
        input=line + "\n",
        capture_output=True,
        text=True,
        timeout=60,
        check=True,  # it answers and exits when its input ends
    )
    assert json.loads(done.stdout) == expected
