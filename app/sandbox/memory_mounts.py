"""The host side of a session's /mnt/memory/<slug>/ mounts: placing memories, finding changes.

Each store is a host directory bind-mounted into the sandbox (read-only for ``read_only``
stores, under a read-only /mnt/memory). The agent writes there with ordinary tools, so the
directory is untrusted: it is read and written without following any link (every directory is
opened relative to its parent with ``O_NOFOLLOW``; only regular files count), and what a scan
reads is bounded (files, depth, bytes per file).

A scan compares the directory with what was last synced (``Synced``: path -> digest, size,
modification time) and reads only files whose size or modification time changed.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
MAX_DEPTH = 20  # a memory path has at most 20 segments


@dataclass(frozen=True)
class Synced:
    """A file as last placed or synced: the digest of the store content it is based on (None: not
    in the store), and the size and mtime it had on disk then."""

    sha256: str | None
    size: int
    mtime_ns: int


@dataclass(frozen=True)
class Changed:
    path: str  # "/notes/todo.md"
    data: bytes | None  # None: over ``max_bytes`` (not read whole)
    size: int
    mtime_ns: int

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data or b"").hexdigest()


@dataclass
class Scan:
    changed: list[Changed] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    unchanged: dict[str, Synced] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)  # links, devices, too deep, too many


@dataclass(frozen=True)
class _Limits:
    max_files: int
    max_bytes: int


def _read(fd: int, name: str, max_bytes: int) -> bytes | None:
    handle = os.open(name, _FILE_FLAGS, dir_fd=fd)
    try:
        if not stat.S_ISREG(os.fstat(handle).st_mode):
            raise OSError(f"{name} is not a regular file")
        chunks, left = [], max_bytes + 1
        while left > 0 and (chunk := os.read(handle, min(left, 1 << 20))):
            chunks.append(chunk)
            left -= len(chunk)
        data = b"".join(chunks)
        return None if len(data) > max_bytes else data
    finally:
        os.close(handle)


def _walk(fd: int, prefix: str, depth: int, known: Mapping[str, Synced], limits: _Limits, scan: Scan) -> None:
    """Visit one directory (and those below it)."""
    with os.scandir(fd) as entries:
        for entry in sorted(entries, key=lambda e: e.name):
            path = f"{prefix}/{entry.name}"
            info = entry.stat(follow_symlinks=False)
            if stat.S_ISDIR(info.st_mode) and depth < MAX_DEPTH:
                with contextlib.suppress(OSError):
                    child = os.open(entry.name, _DIR_FLAGS, dir_fd=fd)
                    try:
                        _walk(child, path, depth + 1, known, limits, scan)
                    finally:
                        os.close(child)
                continue
            if not stat.S_ISREG(info.st_mode) or len(scan.changed) + len(scan.unchanged) >= limits.max_files:
                scan.skipped.append(path)
                continue
            before = known.get(path)
            if before is not None and (before.size, before.mtime_ns) == (info.st_size, info.st_mtime_ns):
                scan.unchanged[path] = before
                continue
            with contextlib.suppress(OSError):  # swapped for something else meanwhile: next scan
                data = _read(fd, entry.name, limits.max_bytes)
                scan.changed.append(Changed(path, data, info.st_size, info.st_mtime_ns))


def _same(before: Synced | None, change: Changed) -> bool:
    return before is not None and before.sha256 == change.sha256


def scan(root: Path, known: Mapping[str, Synced], *, max_files: int, max_bytes: int) -> Scan:
    """What changed under ``root`` since ``known``; files identical to it are ``unchanged``."""
    result = Scan()
    try:
        fd = os.open(root, _DIR_FLAGS)
    except FileNotFoundError:
        return result
    try:
        _walk(fd, "", 0, known, _Limits(max_files, max_bytes), result)
    finally:
        os.close(fd)
    present = {c.path for c in result.changed} | result.unchanged.keys() | set(result.skipped)
    touched = [c for c in result.changed if c.data is not None and _same(known.get(c.path), c)]
    for change in touched:  # rewritten with the same bytes: only its size and mtime are news
        result.unchanged[change.path] = Synced(change.sha256, change.size, change.mtime_ns)
    result.changed = [c for c in result.changed if c not in touched]
    result.deleted = sorted(p for p in known if p not in present)
    return result


def _open_parent(root_fd: int, parts: list[str]) -> int:
    """The directory holding ``parts[-1]``, created as needed, reached without following links."""
    fd = os.dup(root_fd)
    for part in parts[:-1]:
        with contextlib.suppress(FileExistsError):
            os.mkdir(part, 0o755, dir_fd=fd)
        child = os.open(part, _DIR_FLAGS, dir_fd=fd)
        os.close(fd)
        fd = child
    return fd


def write(root: Path, path: str, data: bytes) -> Synced:
    """Place ``data`` at the memory ``path`` under ``root`` (written aside, then renamed in)."""
    parts = path.lstrip("/").split("/")
    root_fd = os.open(root, _DIR_FLAGS)
    try:
        fd = _open_parent(root_fd, parts)
    finally:
        os.close(root_fd)
    temporary = f".mas-{uuid.uuid4().hex}"
    try:
        handle = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644, dir_fd=fd)
        try:
            os.write(handle, data)
            info = os.fstat(handle)
        finally:
            os.close(handle)
        os.replace(temporary, parts[-1], src_dir_fd=fd, dst_dir_fd=fd)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary, dir_fd=fd)
        os.close(fd)
    return Synced(hashlib.sha256(data).hexdigest(), info.st_size, info.st_mtime_ns)


def remove(root: Path, path: str) -> None:
    """Remove the file at the memory ``path`` under ``root`` (if it is there)."""
    parts = path.lstrip("/").split("/")
    root_fd = os.open(root, _DIR_FLAGS)
    try:
        fd = _open_parent(root_fd, parts)
    finally:
        os.close(root_fd)
    try:
        with contextlib.suppress(FileNotFoundError, IsADirectoryError):
            os.unlink(parts[-1], dir_fd=fd)
    finally:
        os.close(fd)


def populate(root: Path, files: Iterable[tuple[str, bytes]]) -> dict[str, Synced]:
    """Place each ``(path, data)`` under a fresh ``root``; what was placed."""
    root.mkdir(parents=True, exist_ok=True)
    return {path: write(root, path, data) for path, data in files}
