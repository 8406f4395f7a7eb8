"""The local backend starts its tool servers by forking a zygote, not a new interpreter each:
every session still gets a server process of its own, in a session of its own, that outlives
the backend; many start at once (requests carry ids, each is answered when its server listens);
a zygote that died, even with requests in flight, is started again; a server that cannot start
is reported with its own words; the zygote refuses what it must not run."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.sandbox import SandboxError, SandboxSpec, ToolRequest
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


def _stat(pid: int) -> list[str]:
    """A process's /proc stat fields after its name: state, ppid, pgrp, session, ..."""
    with open(f"/proc/{pid}/stat") as handle:
        return handle.read().rsplit(")", 1)[1].split()


async def test_a_zygote_that_died_is_started_again(state_dir: Path) -> None:
    backend = LocalBackend(sandbox_settings(state_dir))
    first, second = _sid(), _sid()
    try:
        await backend.ensure(first, SandboxSpec(env_id="env_test"))
        zygote = backend._zygote.pid
        assert zygote is not None
        os.kill(zygote, signal.SIGKILL)
        await backend.ensure(second, SandboxSpec(env_id="env_test"))
        assert (await _pwd(backend, second)).split()[0] == backend.workspace(second)
        assert backend._zygote.pid not in (None, zygote)
    finally:
        await backend.remove(first)
        await backend.remove(second)
        await backend.close()


async def test_many_servers_start_at_once_each_forked_once_into_a_session_of_its_own(state_dir: Path) -> None:
    backend = LocalBackend(sandbox_settings(state_dir))
    sids = [_sid() for _ in range(24)]
    try:
        await asyncio.gather(*(backend.ensure(sid, SandboxSpec(env_id="env_test")) for sid in sids))
        zygote = backend._zygote.pid
        pids = [_server_pid(backend, sid) for sid in sids]
        assert len(set(pids)) == len(sids)
        for pid in pids:
            _state, ppid, _pgrp, session = _stat(pid)[:4]
            # One fork: the zygote's own child (it reaps it), leader of a session of its own.
            assert (int(ppid), int(session)) == (zygote, pid)
        shells = await asyncio.gather(*(_pwd(backend, sid) for sid in sids))
        assert [shell.split()[0] for shell in shells] == [backend.workspace(sid) for sid in sids]
    finally:
        await asyncio.gather(*(backend.remove(sid) for sid in sids))
        await backend.close()


async def test_a_zygote_killed_with_requests_in_flight_is_replaced_and_every_server_starts(
    state_dir: Path,
) -> None:
    backend = LocalBackend(sandbox_settings(state_dir))
    first = _sid()
    sids = [_sid() for _ in range(8)]
    try:
        await backend.ensure(first, SandboxSpec(env_id="env_test"))
        zygote = backend._zygote.pid
        assert zygote is not None
        os.kill(zygote, signal.SIGSTOP)  # it reads nothing more: the requests below stay in flight
        ensures = [asyncio.create_task(backend.ensure(sid, SandboxSpec(env_id="env_test"))) for sid in sids]
        done, _ = await asyncio.wait(ensures, timeout=0.5)
        assert not done  # all waiting on the stopped zygote
        os.kill(zygote, signal.SIGKILL)
        await asyncio.gather(*ensures)
        assert backend._zygote.pid not in (None, zygote)
        shells = await asyncio.gather(*(_pwd(backend, sid) for sid in sids))
        assert [shell.split()[0] for shell in shells] == [backend.workspace(sid) for sid in sids]
    finally:
        await asyncio.gather(*(backend.remove(sid) for sid in [first, *sids]))
        await backend.close()


async def test_a_server_that_cannot_start_is_reported_with_its_own_words(state_dir: Path) -> None:
    backend = LocalBackend(sandbox_settings(state_dir))
    broken, fine = _sid(), _sid()
    (backend.root / broken).mkdir(parents=True)
    (backend.root / broken / "workspace").write_text("a file where the workspace directory goes")
    try:
        with pytest.raises(SandboxError) as failed:
            await backend.ensure(broken, SandboxSpec(env_id="env_test"))
        message = str(failed.value)
        assert f"the local tool server of {broken} did not start" in message
        assert "exit status 1" in message and "FileExistsError" in message, message
        await backend.ensure(fine, SandboxSpec(env_id="env_test"))  # the zygote is still there
        assert (await _pwd(backend, fine)).split()[0] == backend.workspace(fine)
    finally:
        await backend.remove(broken)
        await backend.remove(fine)
        await backend.close()


def test_starting_and_stopping_servers_needs_no_thread_pool_thread(state_dir: Path) -> None:
    """With the default executor's only thread taken (other work: a slow copy, say), servers are
    started, used and stopped all the same: nothing waits in a pool thread per server."""
    blocker = threading.Event()

    async def scenario() -> list[str]:
        loop = asyncio.get_running_loop()
        loop.set_default_executor(concurrent.futures.ThreadPoolExecutor(max_workers=1))
        busy = loop.run_in_executor(None, blocker.wait, 120)
        backend = LocalBackend(sandbox_settings(state_dir))
        sids = [_sid() for _ in range(4)]
        try:
            async with asyncio.timeout(60):
                await asyncio.gather(*(backend.ensure(sid, SandboxSpec(env_id="env_test")) for sid in sids))
                shells = await asyncio.gather(*(_pwd(backend, sid) for sid in sids))
                pids = [_server_pid(backend, sid) for sid in sids]
                await asyncio.gather(*(backend.stop(sid) for sid in sids))
            assert not any(_alive(pid) for pid in pids)
            return [shell.split()[0] for shell in shells]
        finally:
            blocker.set()
            await busy
            await asyncio.gather(*(backend.remove(sid) for sid in sids))
            await backend.close()

    workspaces = asyncio.run(scenario())
    assert len(set(workspaces)) == 4


def _alive(pid: int) -> bool:
    try:
        return _stat(pid)[0] != "Z"
    except OSError:
        return False


def _zygote_replies(lines: list[str]) -> list[dict[str, object]]:
    done = subprocess.run(
        [sys.executable, str(SERVER), "--zygote"],
        input="".join(line + "\n" for line in lines),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,  # it answers and exits when its input ends
    )
    return [json.loads(line) for line in done.stdout.splitlines()]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("not json", {"id": None, "error": 'expected {"id": ..., "argv": [strings]}'}),
        ('["--detach"]', {"id": None, "error": 'expected {"id": ..., "argv": [strings]}'}),
        ('{"id": 3, "argv": "--detach"}', {"id": 3, "error": 'expected {"id": ..., "argv": [strings]}'}),
        (
            '{"id": 4, "argv": ["--socket", "x", "--workspace", "y", "--spill-dir", "z"]}',
            {"id": 4, "error": "the zygote starts detached servers only"},
        ),
    ],
)
def test_the_zygote_refuses_what_it_must_not_run(line: str, expected: dict[str, object]) -> None:
    assert _zygote_replies([line]) == [expected]


def test_a_server_that_exits_before_it_listens_is_answered_with_its_status_and_words(tmp_path: Path) -> None:
    argv = ["--socket", str(tmp_path / "s"), "--workspace", str(tmp_path), "--spill-dir", str(tmp_path)]
    with _zygote() as proc:
        assert proc.stdin is not None
        request = {"id": "x", "argv": [*argv, "--detach", "--no-such-flag"]}
        proc.stdin.write(json.dumps(request).encode() + b"\n")
        proc.stdin.flush()
        reply = _reply(proc)
    # argparse's usage error: exit status 2 and its message, as a new process would give
    assert (reply["id"], reply["status"]) == ("x", 2)
    assert reply["error"] == "toolserver: error: unrecognized arguments: --no-such-flag"
    assert str(reply["output"]).startswith("usage: toolserver")


@contextlib.contextmanager
def _zygote() -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(
        [sys.executable, str(SERVER), "--zygote"], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait(timeout=60)
        for stream in (proc.stdin, proc.stdout):
            if stream is not None:
                stream.close()


def _reply(proc: subprocess.Popen[bytes]) -> dict[str, object]:
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], 60)
    assert ready, "the zygote did not answer"
    reply = json.loads(proc.stdout.readline())
    assert isinstance(reply, dict)
    return reply


def _ping(socket_path: Path) -> bool:
    with socket.socket(socket.AF_UNIX) as conn:
        conn.settimeout(60)
        conn.connect(str(socket_path))
        conn.sendall(b'{"id": 1, "op": "ping"}\n')
        with conn.makefile("rb") as lines:
            reply: object = json.loads(lines.readline())
        return reply == {"id": 1, "ok": True}


def test_each_request_is_answered_when_its_server_listens_in_any_order(tmp_path: Path) -> None:
    slow, quick = tmp_path / "slow", tmp_path / "quick"
    for base in (slow, quick):
        base.mkdir()
    os.mkfifo(slow / "server.pid")  # its server waits at its pid file until it is read

    def request(request_id: int, base: Path) -> bytes:
        argv = ["--socket", str(base / "tool.sock"), "--workspace", str(base / "workspace")]
        argv += ["--spill-dir", str(base / "out"), "--pid-file", str(base / "server.pid"), "--detach"]
        return json.dumps({"id": request_id, "argv": argv}).encode() + b"\n"

    pids: list[int] = []
    with _zygote() as proc:
        assert proc.stdin is not None
        try:
            proc.stdin.write(request(1, slow) + request(2, quick))
            proc.stdin.flush()
            first = _reply(proc)  # the second request's server listens first
            assert first["id"] == 2 and isinstance(first["pid"], int)
            pids.append(first["pid"])
            assert _ping(quick / "tool.sock")
            assert not (slow / "tool.sock").exists()
            with open(slow / "server.pid") as fifo:
                slow_pid = int(fifo.read())
            pids.append(slow_pid)
            assert _reply(proc) == {"id": 1, "pid": slow_pid}
            assert _ping(slow / "tool.sock")  # listening when answered: no retry needed
        finally:
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)
