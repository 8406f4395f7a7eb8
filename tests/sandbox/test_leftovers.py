"""What killed runs leave behind is reaped: a detached tool server (the local backend's host
process) exits when its state is gone, and the test run's reaper unmounts and removes the
scratch directories of runs that died."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tests.support import scratch

SERVER = Path(__file__).resolve().parents[2] / "sandbox" / "toolserver"


def _start(base: Path, replacing: int | None = None, tmpdir: Path | None = None) -> int:
    pid_file = base / "server.pid"
    env = {**os.environ, "TMPDIR": str(tmpdir)} if tmpdir is not None else None
    subprocess.run(
        [
            sys.executable,
            str(SERVER),
            "--socket",
            str(base / "tool.sock"),
            "--workspace",
            str(base / "workspace"),
            "--spill-dir",
            str(base / "tool-output"),
            "--pid-file",
            str(pid_file),
            "--detach",
        ],
        check=True,
        stdin=subprocess.DEVNULL,
        timeout=60,
        env=env,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        text = pid_file.read_text().strip() if pid_file.exists() else ""
        if text and int(text) != replacing:
            return int(text)
        time.sleep(0.05)
    raise AssertionError("the detached server wrote no pid file")


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            return handle.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except OSError:
        return False


def _wait_gone(pid: int, seconds: float = 120) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.1)
    return False


def test_server_exits_when_its_state_directory_is_deleted(tmp_path: Path) -> None:
    base = tmp_path / "session"
    base.mkdir()
    pid = _start(base)
    try:
        assert _alive(pid)
        shutil.rmtree(base)
        assert _wait_gone(pid), "the server outlived its deleted state directory"
    finally:
        if _alive(pid):
            os.kill(pid, 9)


def test_server_exits_when_another_takes_its_pid_file_over(tmp_path: Path) -> None:
    base = tmp_path / "session"
    base.mkdir()
    first = _start(base)
    second = _start(base, replacing=first)
    try:
        assert first != second
        assert _wait_gone(first), "the replaced server kept running"
        time.sleep(6)  # more than one check interval: the current owner stays
        assert _alive(second)
    finally:
        for pid in (first, second):
            if _alive(pid):
                os.kill(pid, 9)


def _echo(socket_path: Path) -> str:
    """One bash call (which writes its command to the shell's scratch directory)."""
    deadline = time.monotonic() + 60
    while True:
        try:
            with socket.socket(socket.AF_UNIX) as conn:
                conn.settimeout(60)
                conn.connect(str(socket_path))
                request = {"id": 1, "op": "tool", "name": "bash", "input": {"command": "echo hi"}}
                conn.sendall(json.dumps(request).encode() + b"\n")
                with conn.makefile("rb") as lines:
                    reply = json.loads(lines.readline())
                return str(reply["content"][0]["text"])
        except (ConnectionRefusedError, FileNotFoundError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def test_a_server_that_exits_leaves_no_scratch_directory(tmp_path: Path) -> None:
    """Stopped (SIGTERM) or disowned (its state deleted), a server removes its shell's scratch
    directory: a host that runs many sessions must not fill its temporary directory."""
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    stopped, disowned = tmp_path / "stopped", tmp_path / "disowned"
    pids = []
    for base in (stopped, disowned):
        base.mkdir()
        pids.append(_start(base, tmpdir=tmpdir))
        assert _echo(base / "tool.sock") == "hi"
    try:
        assert len(list(tmpdir.glob("mas-shell-*"))) == 2
        os.kill(pids[0], signal.SIGTERM)
        shutil.rmtree(disowned)
        assert all(_wait_gone(pid) for pid in pids)
        assert list(tmpdir.iterdir()) == []
    finally:
        for pid in pids:
            if _alive(pid):
                os.kill(pid, 9)


def _dead_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting needs root")
def test_scratch_of_a_dead_run_is_unmounted_and_removed(tmp_path: Path) -> None:
    root = Path(tempfile.gettempdir())
    dead = root / f"mas-test-0123456789-p{_dead_pid()}-leftover"
    alive = root / f"mas-test-9876543210-p{os.getpid()}-inuse"
    mount = dead / "local" / "sesn_x" / "disk"
    mount.mkdir(parents=True)
    alive.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], check=True)
    try:
        (mount / "file").write_text("left behind")
        scratch.reap_dead_runs()
        assert not os.path.ismount(mount)
        assert not dead.exists()
        assert alive.exists(), "a live run's directory was reaped"
    finally:
        if os.path.ismount(mount):
            subprocess.run(["umount", "--lazy", str(mount)], check=False)
        shutil.rmtree(dead, ignore_errors=True)
        shutil.rmtree(alive, ignore_errors=True)


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting needs root")
def test_disks_in_a_dead_runs_pytest_directory_are_unmounted(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """A killed run's ``tmp_path`` servers leave mounted disks that pytest cannot delete."""
    # pytest-of-<user>/pytest-N[/popen-gwK under xdist]: numbered run directories sit in the user's.
    base = tmp_path_factory.getbasetemp()
    user_dir = next(p for p in base.parents if p.name.startswith("pytest-of-"))
    dead = user_dir / f"mas-reaper-test-{os.getpid()}"
    (dead / ".lock").parent.mkdir(parents=True, exist_ok=True)
    (dead / ".lock").write_text(str(_dead_pid()))
    mount = dead / "server" / "sandbox" / "disk"
    mount.mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], check=True)
    try:
        own = tmp_path_factory.getbasetemp()  # this run's directory holds its live lock
        scratch.reap_dead_runs()
        assert not os.path.ismount(mount)
        assert own.exists()
    finally:
        if os.path.ismount(mount):
            subprocess.run(["umount", "--lazy", str(mount)], check=False)
        shutil.rmtree(dead, ignore_errors=True)


def _user_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.getbasetemp()
    return next(p for p in base.parents if p.name.startswith("pytest-of-"))


def _mount_tmpfs(mount: Path) -> None:
    mount.mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], check=True)


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting needs root")
def test_a_garbage_directory_pytest_could_not_delete_is_unmounted_and_removed(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """pytest renames an old run's directory `garbage-<uuid>` to delete it; a mounted disk in it
    made the deletion fail. The next run's reaper unmounts the disk and removes the directory."""
    garbage = _user_dir(tmp_path_factory) / f"garbage-mas-reaper-test-{os.getpid()}"
    mount = garbage / "popen-gw0" / "server0" / "sandbox" / "disk"
    _mount_tmpfs(mount)
    try:
        scratch.reap_dead_runs()
        assert not os.path.ismount(mount)
        assert not garbage.exists()
        assert tmp_path_factory.getbasetemp().exists()  # this run's own directory is in use
    finally:
        if os.path.ismount(mount):
            subprocess.run(["umount", "--lazy", str(mount)], check=False)
        shutil.rmtree(garbage, ignore_errors=True)


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting needs root")
def test_a_run_that_ends_unmounts_the_disks_in_its_own_pytest_directory(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """At its end a run unmounts what its `tmp_path` servers left mounted in its own directory
    (named by the pid in `.lock`), so pytest can later delete it; another live run's stays."""
    user_dir = _user_dir(tmp_path_factory)
    ending = subprocess.Popen(["sleep", "600"])  # stands for the pytest process whose run ends
    other = subprocess.Popen(["sleep", "600"])  # another run, still going
    runs = {process.pid: user_dir / f"mas-reaper-test-{process.pid}" for process in (ending, other)}
    mounts = {pid: run / "popen-gw1" / "server0" / "sandbox" / "disk" for pid, run in runs.items()}
    try:
        for pid, run in runs.items():
            _mount_tmpfs(mounts[pid])
            (run / ".lock").write_text(str(pid))
        scratch.unmount_in_pytest_dirs_of(ending.pid)
        assert not os.path.ismount(mounts[ending.pid])
        assert os.path.ismount(mounts[other.pid])
    finally:
        for process in (ending, other):
            process.kill()
            process.wait()
        for pid, mount in mounts.items():
            if os.path.ismount(mount):
                subprocess.run(["umount", "--lazy", str(mount)], check=False)
            shutil.rmtree(runs[pid], ignore_errors=True)
