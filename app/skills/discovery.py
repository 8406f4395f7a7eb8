"""Skills found in a repository resource's ``.claude/skills/<name>/SKILL.md`` (exactly one level
below the repository root), scanned once from the checkout a session starts with.

Each one is checked like an uploaded skill: its SKILL.md frontmatter (name, description), and
the directory's size and file count within the upload limits. A skill that fails is skipped
with a note saying why; nothing in a repository can fail the session. The checkout is hostile
input read on the host: no link is followed (a linked ``.claude``, skills directory, skill
directory or SKILL.md is skipped, and links inside a skill are not counted as its files).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from pydantic import BaseModel

from app.errors import ApiError
from app.skills.bundle import SKILL_FILE
from app.skills.frontmatter import parse_header

SKILLS_DIR = ".claude/skills"
MAX_SKILLS = 64  # per repository: each one is a line of every request's system prompt


class RepoSkill(BaseModel):
    """A usable skill of a repository: listed by ``name`` and ``description``; its files are at
    ``directory`` in the sandbox (inside the repository's mount path)."""

    name: str
    description: str
    directory: str


class RepoSkills(BaseModel):
    """What a session's repositories hold: usable skills, and notes on those skipped."""

    skills: list[RepoSkill] = []
    skipped: list[str] = []

    def merged(self, other: RepoSkills) -> RepoSkills:
        return RepoSkills(skills=[*self.skills, *other.skills], skipped=[*self.skipped, *other.skipped])


def _is_real_dir(path: Path) -> bool:
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except OSError:
        return False


def _tree_size(root: Path, max_files: int) -> tuple[int, int]:
    """Regular files below ``root`` and their bytes (links not followed; counting stops past the
    limit)."""
    files = total = 0
    for parent, dirs, names in os.walk(root, followlinks=False):
        dirs[:] = [d for d in dirs if _is_real_dir(Path(parent) / d)]
        for name in names:
            info = os.lstat(Path(parent) / name)
            if stat.S_ISREG(info.st_mode):
                files, total = files + 1, total + info.st_size
        if files > max_files:
            break
    return files, total


def _skill(directory: Path, where: str, mount_path: str, max_bytes: int, max_files: int) -> RepoSkill | str:
    """The skill in ``directory``, or why it is skipped."""
    skill_file = directory / SKILL_FILE
    try:
        info = os.lstat(skill_file)
    except OSError:
        return f"{where}: no {SKILL_FILE} in the directory"
    if not stat.S_ISREG(info.st_mode):
        return f"{where}/{SKILL_FILE} is not a regular file (links are not followed)"
    if info.st_size > max_bytes:
        return f"{where}/{SKILL_FILE} holds {info.st_size:,} bytes; the limit is {max_bytes:,}"
    files, total = _tree_size(directory, max_files)
    if files > max_files or total > max_bytes:
        limits = f"{max_files:,} files or {max_bytes:,} bytes"
        return f"{where}: the skill holds more than the {limits} a skill may hold"
    try:
        header = parse_header(skill_file.read_bytes())
    except ApiError as exc:
        return f"{where}/{exc.message}"
    except OSError as exc:
        return f"{where}/{SKILL_FILE} could not be read: {exc.strerror}"
    return RepoSkill(name=header.name, description=header.description, directory=f"{mount_path}/{where}")


def scan(checkout: Path, mount_path: str, *, max_bytes: int, max_files: int) -> RepoSkills:
    """The skills of the repository checked out at ``checkout`` (mounted at ``mount_path``)."""
    found = RepoSkills()
    if not (_is_real_dir(checkout / ".claude") and _is_real_dir(checkout / SKILLS_DIR)):
        if (checkout / ".claude").is_symlink() or (checkout / SKILLS_DIR).is_symlink():
            found.skipped.append(f"{mount_path}/{SKILLS_DIR} is a link; links are not followed")
        return found
    entries = sorted(p for p in (checkout / SKILLS_DIR).iterdir() if not p.name.startswith("."))
    for entry in entries:
        where = f"{SKILLS_DIR}/{entry.name}"
        if not _is_real_dir(entry):
            if entry.is_symlink():
                found.skipped.append(f"{mount_path}/{where} is a link; links are not followed")
            continue  # a plain file next to the skill directories is not a skill
        if len(found.skills) >= MAX_SKILLS:
            found.skipped.append(f"{mount_path}/{where}: only the first {MAX_SKILLS} skills are used")
            continue
        outcome = _skill(entry, where, mount_path, max_bytes, max_files)
        if isinstance(outcome, str):
            found.skipped.append(f"{mount_path}/{outcome}")
        else:
            found.skills.append(outcome)
    return found
