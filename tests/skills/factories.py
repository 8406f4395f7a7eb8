"""Skill uploads as the SDK sends them: (path, bytes[, content type]) tuples under one directory."""

from __future__ import annotations

import io
import stat
import uuid
import zipfile
from typing import Any

import anthropic
from anthropic.types.beta import BetaSkill

Upload = tuple[str, bytes] | tuple[str, bytes, str]


def unique_name(prefix: str = "skill") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def skill_md(
    name: str, description: str = "Greets people. Use when someone says hello.", body: str = ""
) -> bytes:
    return (
        f"---\nname: {name}\ndescription: {description}\n---\n# {name}\n\n{body or 'Say hello.'}\n".encode()
    )


def skill_files(
    name: str, extra: dict[str, bytes] | None = None, directory: str | None = None
) -> list[Upload]:
    """SKILL.md plus ``extra`` files (by path below the skill directory) under ``directory/``."""
    top = directory if directory is not None else name
    files: list[Upload] = [(f"{top}/SKILL.md", skill_md(name), "text/markdown")]
    files += [(f"{top}/{path}", data) for path, data in (extra or {}).items()]
    return files


def make_skill(client: anthropic.Anthropic, name: str | None = None, **params: Any) -> BetaSkill:
    name = name or unique_name()
    return client.beta.skills.create(files=skill_files(name), **params)


def zipped(entries: dict[str, tuple[bytes, int]]) -> bytes:
    """A zip made on Unix: ``{name: (data, st_mode)}``."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, (data, mode) in entries.items():
            info = zipfile.ZipInfo(name)
            info.create_system = 3
            info.external_attr = mode << 16
            archive.writestr(info, data)
    return buffer.getvalue()


REGULAR = stat.S_IFREG | 0o644
EXECUTABLE = stat.S_IFREG | 0o755
SYMLINK = stat.S_IFLNK | 0o777
