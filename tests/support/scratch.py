"""Scratch directories the test run gives its servers and sandboxes, and their reaper.

Each directory is named ``mas-<instance>-p<pid>-...`` after the pytest process that made it. At
the end of a run its own directories go; at the start of a run, those of runs that died (a killed
`pytest`, a CI job cancelled mid-suite) go too: their sandbox disks are unmounted (loop mounts
otherwise stay for ever), their containers removed by instance label, and with the directory gone
their detached host tool servers exit by themselves. Directories of runs still alive (other
checkouts on the same machine) are never touched. Servers made on `tmp_path` mount their disks in
pytest's own numbered directories instead: a run unmounts those of its own directory when it ends,
and the reaper those of dead runs (and removes the `garbage-*` directories pytest could not delete
because of them).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

_NAME = re.compile(r"^mas-(?P<instance>[A-Za-z0-9]+(?:-[0-9a-f]+)?)-p(?P<pid>\d+)-")
_made: list[Path] = []


def make_dir(instance: str, kind: str = "") -> Path:
    """A new scratch directory for `instance`, reaped with this run."""
    suffix = f"{kind}-" if kind else ""
    path = Path(tempfile.mkdtemp(prefix=f"mas-{instance}-p{os.getpid()}-{suffix}"))
    _made.append(path)
    return path


def reap_own() -> None:
    """At the end of the run: everything this process made."""
    _remove([path for path in _made if path.exists()])
    _made.clear()


def unmount_under(path: Path) -> None:
    """Unmount every sandbox disk under `path` (a server's state directory whose containers are
    gone): left mounted, each would stay until the next run's reaper."""
    _unmount(_mounts_under([path]))


def reap_dead_runs() -> None:
    """At the start of a run: whatever runs that are no longer alive left behind."""
    root = Path(tempfile.gettempdir())
    dead: list[Path] = []
    with contextlib.suppress(OSError):
        for path in root.iterdir():
            match = _NAME.match(path.name)
            if match and path.is_dir() and not _alive(int(match["pid"])):
                dead.append(path)
    _remove(dead, containers={_NAME.match(p.name)["instance"] for p in dead})  # type: ignore[index]
    _unmount_in_dead_pytest_dirs(root)


def _unmount_in_dead_pytest_dirs(root: Path) -> None:
    """Servers made on ``tmp_path`` keep their sandbox disks in pytest's own numbered directories;
    pytest removes a dead run's directory later but cannot remove a mounted disk in it. A directory
    whose ``.lock`` (pytest writes its pid there) is gone or names a dead process is not in use.

    pytest deletes an old numbered directory by renaming it ``garbage-<uuid>`` first; one it could
    not delete (a disk was mounted in it) stays, and pytest tries again only when a later run ends.
    Once its disks are unmounted, it is removed here."""
    dead = [numbered for numbered in _pytest_dirs(root) if not _alive(_lock_owner(numbered) or 0)]
    _unmount(_mounts_under(dead))
    for numbered in dead:
        if numbered.name.startswith("garbage-"):
            shutil.rmtree(numbered, ignore_errors=True)


def unmount_in_pytest_dirs_of(pid: int, root: Path | None = None) -> None:
    """At the end of a run (its servers stopped): the disks left mounted in the pytest
    directories whose ``.lock`` names ``pid`` (the run's own, with its xdist workers'), so that
    pytest can delete them when it cleans up old runs instead of leaving ``garbage-*``."""
    root = root or Path(tempfile.gettempdir())
    _unmount(_mounts_under([numbered for numbered in _pytest_dirs(root) if _lock_owner(numbered) == pid]))


def _pytest_dirs(root: Path) -> list[Path]:
    found: list[Path] = []
    for user_dir in root.glob("pytest-of-*"):
        with contextlib.suppress(OSError):
            found += [numbered for numbered in user_dir.iterdir() if numbered.is_dir()]
    return found


def _lock_owner(numbered: Path) -> int | None:
    """The pid in a pytest directory's ``.lock``; None without one."""
    try:
        return int((numbered / ".lock").read_text().strip() or "0")
    except (OSError, ValueError):
        return None


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove(paths: list[Path], containers: set[str] | None = None) -> None:
    if not paths:
        return
    if containers:
        _remove_containers(containers)
    _unmount(_mounts_under(paths))
    for path in paths:
        shutil.rmtree(path, ignore_errors=True)


def _unmount(mounts: list[str]) -> None:
    for mount in mounts:
        # Deepest first; a mount still busy is detached lazily and freed when its last user goes.
        if subprocess.run(["umount", mount], capture_output=True).returncode != 0:
            subprocess.run(["umount", "--lazy", mount], capture_output=True)


def _mounts_under(paths: list[Path]) -> list[str]:
    try:
        lines = Path("/proc/self/mounts").read_text().splitlines()
    except OSError:
        return []
    prefixes = [str(path.resolve()) + os.sep for path in paths]
    points = [line.split()[1].encode().decode("unicode_escape") for line in lines if len(line.split()) > 1]
    inside = [point for point in points if any(point.startswith(prefix) for prefix in prefixes)]
    return sorted(inside, key=len, reverse=True)


def _remove_containers(instances: set[str]) -> None:
    try:
        import docker
        import docker.errors
    except ImportError:
        return
    try:
        client = docker.from_env(timeout=30)
        client.ping()
    except docker.errors.DockerException:
        return
    try:
        # `mas dispatch` labels its sandboxes with the instance plus "-dispatch".
        for instance in sorted(instances | {f"{name}-dispatch" for name in instances}):
            for container in client.containers.list(
                all=True, filters={"label": f"mas.instance={instance}"}, ignore_removed=True
            ):
                with contextlib.suppress(docker.errors.DockerException):
                    container.remove(force=True)
    finally:
        client.close()
