"""A session's skills: their files copied into the sandbox, and their listing in the system prompt.

Each skill the session pinned is materialised at ``/workspace/skills/<name>/`` (executable bits
kept) before the first tool runs; the provisioner starts the copy as soon as the session exists.
The system prompt lists each skill's name, description and ``SKILL.md`` path only: the agent
reads a skill's body with the ``read`` tool when a task calls for it (progressive disclosure).

A copy that fails (the sandbox went away, content missing) is logged and tried again by the next
tool step; a skill already in the sandbox is never copied over (the agent may have changed it).
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from app.db.engine import Database
from app.sandbox.containers import WORKSPACE
from app.sandbox.interface import SandboxBackend, SandboxError
from app.skills import service as skills
from app.skills.archive import ArchiveFile
from app.skills.discovery import RepoSkills
from app.skills.references import SessionSkill
from app.storage.blobs import BlobBackend
from app.storage.service import MissingContent

log = logging.getLogger(__name__)

SKILLS_DIR = f"{WORKSPACE}/skills"
SKILLS_INTRO = (
    "Skills are available in this session. A skill is a directory of instructions, scripts and "
    "resources for one kind of task; its SKILL.md says how to use it. When a task matches a "
    "skill's description, read that SKILL.md with the read tool before you start, then follow it "
    "(read the skill's other files only when it points you to them)."
)


SKIPPED_INTRO = (
    "These skill directories in the session's repositories were skipped (not usable as skills); "
    "tell the user if they ask about them:"
)


def skill_path(skill: SessionSkill, *, cloud: bool) -> str:
    """Where the agent finds the skill: in the sandbox, or (self-hosted) below the working
    directory the client's worker downloads skills into."""
    return f"{SKILLS_DIR}/{skill.name}" if cloud else f"skills/{skill.name}"


def prompt_section(
    listed: Sequence[SessionSkill], *, cloud: bool, repo: RepoSkills | None = None
) -> str | None:
    """The system prompt's skills section (None without skills): the session's skills, then
    those found in its repositories, then the repository skills that were skipped and why."""
    repo = repo or RepoSkills()
    lines = [
        f"- {s.name}: {s.description} (instructions: {skill_path(s, cloud=cloud)}/SKILL.md)" for s in listed
    ]
    lines += [f"- {s.name}: {s.description} (instructions: {s.directory}/SKILL.md)" for s in repo.skills]
    parts = [SKILLS_INTRO, "", *lines] if lines else []
    if repo.skipped:
        if parts:
            parts.append("")
        parts.append(SKIPPED_INTRO)
        parts += [f"- {note}" for note in repo.skipped]
    return "\n".join(parts) if parts else None


def _write_tree(target: Path, files: Sequence[ArchiveFile]) -> None:
    for file in files:
        path = (target / file.path).resolve()
        if not path.is_relative_to(target.resolve()):  # checked at upload; never trust it twice
            raise OSError(f"skill file {file.path!r} is outside its directory")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(file.data)
        os.chmod(path, 0o755 if file.executable else 0o644)


@dataclass
class SkillMounter:
    """Per process: each (session, skill version) copied into the sandbox once, shared by the
    provisioner and the tool step."""

    database: Database
    blobs: BlobBackend
    work_root: Path
    _tasks: dict[tuple[str, str], asyncio.Task[bool]] = field(default_factory=dict)

    async def _files(self, version_id: str) -> list[ArchiveFile]:
        async with self.database.read() as db:
            return await skills.version_files(db, self.blobs, version_id)

    async def _copy(self, sandbox: SandboxBackend, session_id: str, skill: SessionSkill) -> bool:
        target = self.work_root / f"{session_id}-{skill.version_id}-{uuid.uuid4().hex[:8]}"
        try:
            files = await self._files(skill.version_id)
            await asyncio.to_thread(_write_tree, target, files)
            await sandbox.put_tree(session_id, target, skill_path(skill, cloud=True))
        except (SandboxError, OSError, MissingContent) as error:
            log.warning("session %s: skill %s not copied: %s", session_id, skill.name, str(error)[:300])
            return False
        finally:
            await asyncio.to_thread(shutil.rmtree, target, True)
        return True

    async def mount(self, sandbox: SandboxBackend, session_id: str, listed: Sequence[SessionSkill]) -> None:
        """Copy each skill into the sandbox unless it is there already."""
        tasks = []
        for skill in listed:
            key = (session_id, skill.version_id)
            if key not in self._tasks:
                self._tasks[key] = asyncio.create_task(self._copy(sandbox, session_id, skill))
            tasks.append((key, self._tasks[key]))
        for key, task in tasks:
            if not await task:
                self._tasks.pop(key, None)  # the next tool step tries again

    def forget(self, session_id: str) -> None:
        for key in [k for k in self._tasks if k[0] == session_id]:
            self._tasks.pop(key)
