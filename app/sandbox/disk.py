"""A disk quota per sandbox: everything a sandbox can write lives on its own size-limited disk.

Docker cannot limit a container's writable layer on most storage drivers (`--storage-opt size`
needs overlay2 on xfs with project quotas; this project's engines run fuse-overlayfs on ext4). So
a sandbox's root filesystem is read-only, and every place it may write is a directory of one
ext4 filesystem per session, in a sparse image file of ``MAS_SANDBOX_DISK_MB`` loop-mounted on
the host under the session's state directory:

    <state>/<instance>/<session>/disk.img     the image (sparse: it takes what is used)
    <state>/<instance>/<session>/disk/        its mount point, holding
        workspace/ outputs/ tmp/ home/ var-tmp/ run/   bind-mounted into the container

When it is full, writes fail with ENOSPC ("No space left on device") inside the sandbox, and
nothing reaches the host's disk beyond the image's size. The tool server's socket directory
(``run/``) is on it too, so no sandbox-writable directory is on the host's own filesystem.
Mounting needs root on the Docker host (`mas serve`/`mas worker` there); ``MAS_SANDBOX_DISK_MB=0``
turns quotas off where that is impossible.
"""

from __future__ import annotations

import logging
import os
import subprocess
from pathlib import Path

from app.sandbox.interface import SandboxError

log = logging.getLogger(__name__)

# Container path -> directory on the session disk.
DIRECTORIES = {
    "/workspace": "workspace",
    "/mnt/session/outputs": "outputs",
    "/tmp": "tmp",
    "/var/tmp": "var-tmp",
    "/root": "home",
}
RUN_DIR = "run"
_STICKY = {"tmp", "var-tmp"}
_TIMEOUT_S = 60.0
_MKFS_OPTIONS = "lazy_itable_init=1,lazy_journal_init=1,nodiscard"


def image_path(session_dir: Path) -> Path:
    return session_dir / "disk.img"


def mount_point(session_dir: Path) -> Path:
    return session_dir / "disk"


def ensure(session_dir: Path, size_mb: int) -> Path:
    """Create (once), mount (if not mounted: after a reboot too) and lay out the session's disk."""
    image, mount = image_path(session_dir), mount_point(session_dir)
    mount.mkdir(parents=True, exist_ok=True)
    if not os.path.ismount(mount):
        if not image.exists():
            _make(image, size_mb)
        _run(["mount", "-o", "loop,nosuid,nodev,noatime,noinit_itable", str(image), str(mount)])
    for name in [*DIRECTORIES.values(), RUN_DIR]:
        directory = mount / name
        directory.mkdir(exist_ok=True)
        if name in _STICKY:
            directory.chmod(0o1777)
    return mount


def _make(image: Path, size_mb: int) -> None:
    partial = image.with_suffix(".partial")
    with partial.open("wb") as file:
        file.truncate(size_mb * 1024 * 1024)  # sparse: no host space is taken until written
    # Few inodes and lazy initialisation: mkfs takes milliseconds and writes next to nothing.
    _run(["mkfs.ext4", "-q", "-F", "-m", "0", "-i", "65536", "-E", _MKFS_OPTIONS, str(partial)])
    partial.rename(image)


def release(session_dir: Path) -> None:
    """Unmount the session's disk (its container is gone); the caller deletes the directory."""
    mount = mount_point(session_dir)
    if os.path.ismount(mount):
        try:
            _run(["umount", str(mount)])
        except SandboxError:
            log.warning("unmounting %s lazily: still busy", mount)
            _run(["umount", "--lazy", str(mount)])


def _run(command: list[str]) -> None:
    try:
        subprocess.run(command, check=True, capture_output=True, text=True, timeout=_TIMEOUT_S)
    except FileNotFoundError as exc:
        raise SandboxError(f"cannot set up the sandbox disk quota: {command[0]} is not installed") from exc
    except subprocess.CalledProcessError as exc:
        raise SandboxError(
            f"cannot set up the sandbox disk quota ({' '.join(command[:2])}): {exc.stderr.strip() or exc}; "
            "it needs root on the Docker host, or set MAS_SANDBOX_DISK_MB=0 to run without quotas"
        ) from exc
    except subprocess.TimeoutExpired as exc:
        raise SandboxError(f"cannot set up the sandbox disk quota: {command[0]} timed out") from exc


def full_note(size_mb: int) -> str:
    return (
        f"[the sandbox's disk is full: its quota is {size_mb} MiB for /workspace, /tmp, /root and the "
        "outputs together; delete files to free space]"
    )


def prepare(session_dir: Path, size_mb: int) -> Path:
    """The session's disk, mounted, with ``session_dir/run`` pointing at its socket directory;
    returns the mount point."""
    mount = ensure(session_dir, size_mb)
    run = session_dir / RUN_DIR
    if not run.is_symlink():
        run.symlink_to(mount / RUN_DIR, target_is_directory=True)
    return mount


def mount_again(state_root: Path, session_dir: Path, size_mb: int) -> None:
    """Mount the disk a session's sandbox uses (its own or an adopted pool sandbox's) if needed."""
    for owner in owners(state_root, session_dir):
        if image_path(owner).exists():
            ensure(owner, size_mb)


def owners(state_root: Path, session_dir: Path) -> list[Path]:
    """The directories a session's files live in: its own and, when it adopted a warm-pool
    sandbox, the pool's (its ``run`` link points into it)."""
    directories = [session_dir]
    run = session_dir / RUN_DIR
    if run.is_symlink():
        target = Path(os.readlink(run))
        if target.is_relative_to(state_root):
            owner = state_root / target.relative_to(state_root).parts[0]
            if owner != session_dir:
                directories.append(owner)
    return directories
