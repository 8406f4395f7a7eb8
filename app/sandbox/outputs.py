"""Reading what the agent wrote under /mnt/session/outputs, from the host side of its mount.

The directory is written by untrusted code, so it is read without following any link: every
directory is opened relative to its parent with ``O_NOFOLLOW``, and only regular files are read
(a symlink to a host file, a FIFO or a device is skipped, also if swapped in between the listing
and the read).
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
MAX_DEPTH = 32


@dataclass(frozen=True)
class OutputFile:
    """A regular file under the outputs directory: its relative path, size and modification time."""

    path: str
    size: int
    mtime_ns: int


def _walk(fd: int, prefix: str, depth: int, found: list[OutputFile], limit: int) -> None:
    with os.scandir(fd) as entries:
        for entry in sorted(entries, key=lambda e: e.name):
            if len(found) >= limit:
                return
            relative = f"{prefix}{entry.name}"
            info = entry.stat(follow_symlinks=False)
            if stat.S_ISREG(info.st_mode):
                found.append(OutputFile(relative, info.st_size, info.st_mtime_ns))
            elif stat.S_ISDIR(info.st_mode) and depth < MAX_DEPTH:
                with contextlib.suppress(OSError):
                    child = os.open(entry.name, _DIR_FLAGS, dir_fd=fd)
                    try:
                        _walk(child, relative + "/", depth + 1, found, limit)
                    finally:
                        os.close(child)


def list_files(root: Path, limit: int) -> list[OutputFile]:
    """Up to ``limit`` regular files under ``root`` (none if it does not exist)."""
    try:
        fd = os.open(root, _DIR_FLAGS)
    except FileNotFoundError:
        return []
    try:
        found: list[OutputFile] = []
        _walk(fd, "", 0, found, limit)
        return found
    finally:
        os.close(fd)


def open_file(root: Path, relative: str) -> int:
    """A read-only descriptor of the regular file ``relative`` under ``root``, reached without
    following links; OSError if it is not (or no longer) a regular file there."""
    parts = relative.split("/")
    fd = os.open(root, _DIR_FLAGS)
    try:
        for part in parts[:-1]:
            child = os.open(part, _DIR_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = child
        handle = os.open(parts[-1], _FILE_FLAGS, dir_fd=fd)
    finally:
        os.close(fd)
    if not stat.S_ISREG(os.fstat(handle).st_mode):
        os.close(handle)
        raise OSError(f"{relative} is not a regular file")
    return handle


def read_chunks(handle: int, limit: int, chunk: int = 1024 * 1024) -> Iterator[bytes]:
    """The file's bytes, at most ``limit`` + 1 of them (so a caller can tell it is over)."""
    left = limit + 1
    while left > 0:
        data = os.read(handle, min(chunk, left))
        if not data:
            return
        left -= len(data)
        yield data
