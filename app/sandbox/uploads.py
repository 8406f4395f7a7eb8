"""Placing a session's mounted files in the host directory its sandbox sees read-only at
/mnt/session/uploads (a bind mount, so files placed while the sandbox runs appear in it).

Each file is a hard link to the content store's copy when both are on one filesystem (no bytes
copied, however large), else a copy; either way it is written under a temporary name and renamed
into place, so the agent never sees half a file. Work per sync is proportional to what changed.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import Mapping
from pathlib import Path


def _link_or_copy(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.parent / f".mas-{uuid.uuid4().hex}"
    try:
        os.link(source, temporary)
    except OSError:
        shutil.copyfile(source, temporary)
        os.chmod(temporary, 0o444)
    os.replace(temporary, target)


def _remove(root: Path, relative: str) -> None:
    target = root / relative
    if target.is_dir() and not target.is_symlink():
        shutil.rmtree(target, ignore_errors=True)
    else:
        target.unlink(missing_ok=True)
    parent = target.parent
    while parent != root and parent.is_relative_to(root):
        with contextlib.suppress(OSError):
            parent.rmdir()  # only when empty
        parent = parent.parent


def apply(
    root: Path, before: Mapping[str, str], wanted: Mapping[str, Path], wanted_digests: Mapping[str, str]
) -> None:
    """Make ``root`` hold exactly ``wanted`` (relative path -> source file), given that it holds
    ``before`` (relative path -> digest) now."""
    root.mkdir(parents=True, exist_ok=True)
    for relative in before.keys() - wanted.keys():
        _remove(root, relative)
    for relative, source in wanted.items():
        target = root / relative
        if before.get(relative) != wanted_digests[relative] or not target.exists():
            _link_or_copy(source, target)
