"""A session's github_repository resources: cloned on the host (``app/sandbox/git``) and copied
into its sandbox before the first tool runs (the provisioner starts it as soon as the session
exists, so it is usually done by then).

Each checkout is also scanned for skills in ``.claude/skills/`` (``app/skills/discovery``) before it
is copied: the session's first model request waits for that scan (the repositories are cloned
before the agent starts, as documented), and its result is recorded on the session once.

A failure becomes one ``session.error`` (``repository_not_found_error``,
``repository_authentication_error``, ``repository_forbidden_error``, ``repository_checkout_error``
or ``repository_clone_error``, ``retry_status: retrying``) and the session goes on without that
repository, as on the hosted service. A rotated token makes a failed repository try again.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import shutil
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from app.db.models import Session
from app.events.types import EventRecord
from app.sandbox.git import Checkout, GitError, RepoCache
from app.sandbox.interface import SandboxBackend, SandboxError
from app.sessions import repositories as repo_urls
from app.sessions import resources
from app.skills import discovery
from app.skills.bundle import Limits
from app.skills.discovery import RepoSkills

log = logging.getLogger(__name__)

# (resource id, sealed token) -> the token.
Unsealer = Callable[[str, str], str]


@dataclass(frozen=True)
class RepoJob:
    resource_id: str
    url: str
    mount_path: str
    checkout: Checkout
    # Changes with the token, so a rotation retries a failed clone.
    key: str


def jobs(row: Session, base_url: str, unseal: Unsealer) -> list[RepoJob]:
    """What to clone for a session (in the caller's transaction: tokens are opened here)."""
    sealed = resources.sealed_tokens(row)
    found = []
    for resource in resources.repositories(row):
        clone_url, _ = repo_urls.parse_url(resource.url, base_url)
        token = unseal(resource.id, sealed[resource.id]) if resource.id in sealed else None
        where = resource.checkout
        checkout = Checkout(
            clone_url=clone_url,
            public_url=resource.url,
            token=token,
            branch=where.name if where is not None and where.type == "branch" else None,
            commit=where.sha if where is not None and where.type == "commit" else None,
        )
        key = hashlib.sha256(f"{resource.id}:{sealed.get(resource.id, '')}".encode()).hexdigest()
        found.append(RepoJob(resource.id, resource.url, resource.mount_path, checkout, key))
    return found


def error_event(job: RepoJob, error: GitError) -> EventRecord:
    return {
        "type": "session.error",
        "error": {
            "type": f"repository_{error.kind}_error",
            "message": f"{job.url}: {error.message}"[:4000],
            "repository_url": job.url,
            "retry_status": {"type": "retrying"},
        },
    }


@dataclass(frozen=True)
class _Checkout:
    """A repository checked out on the host (``path`` until it is copied) and its skills."""

    path: Path | None
    error: GitError | None
    skills: RepoSkills


@dataclass
class RepoMounter:
    """Per process: one clone per (session, repository, token), shared by the provisioner, the
    skill scan and the tool step; each failure reported once."""

    cache: RepoCache
    work_root: Path
    skill_limits: Limits
    _checkouts: dict[tuple[str, str], asyncio.Task[_Checkout]] = field(default_factory=dict)
    _tasks: dict[tuple[str, str], asyncio.Task[GitError | None]] = field(default_factory=dict)
    _reported: set[tuple[str, str]] = field(default_factory=set)

    async def _checkout(self, session_id: str, job: RepoJob) -> _Checkout:
        target = self.work_root / f"{session_id}-{job.resource_id}-{uuid.uuid4().hex[:8]}"
        try:
            await self.cache.materialize(job.checkout, target)
            limits = self.skill_limits
            found = await asyncio.to_thread(
                discovery.scan, target, job.mount_path, max_bytes=limits.max_bytes, max_files=limits.max_files
            )
        except GitError as error:
            log.info("session %s: %s: %s", session_id, job.url, error.message[:300])
            await asyncio.to_thread(shutil.rmtree, target, True)
            return _Checkout(None, error, RepoSkills())
        except OSError as error:
            await asyncio.to_thread(shutil.rmtree, target, True)
            failed = GitError("clone", f"could not check the repository out: {error}")
            return _Checkout(None, failed, RepoSkills())
        return _Checkout(target, None, found)

    def _checked_out(self, session_id: str, job: RepoJob) -> asyncio.Task[_Checkout]:
        key = (session_id, job.key)
        if key not in self._checkouts:
            self._checkouts[key] = asyncio.create_task(self._checkout(session_id, job))
        return self._checkouts[key]

    async def _mount(self, sandbox: SandboxBackend, session_id: str, job: RepoJob) -> GitError | None:
        checkout = await self._checked_out(session_id, job)
        if checkout.path is not None and not await asyncio.to_thread(checkout.path.exists):
            self._checkouts.pop((session_id, job.key), None)  # scanned, then dropped: again
            checkout = await self._checked_out(session_id, job)
        if checkout.error is not None or checkout.path is None:
            return checkout.error
        try:
            await sandbox.put_tree(session_id, checkout.path, job.mount_path)
        except (SandboxError, OSError) as error:
            return GitError("clone", f"could not copy the repository into the sandbox: {error}")
        finally:
            await asyncio.to_thread(shutil.rmtree, checkout.path, True)
        return None

    async def skills(self, session_id: str, repos: Sequence[RepoJob]) -> RepoSkills:
        """The skills in the repositories' ``.claude/skills/`` (cloning them first if need be; a
        repository that cannot be cloned has none)."""
        found = RepoSkills()
        checkouts = await asyncio.gather(*(self._checked_out(session_id, job) for job in repos))
        for job, checkout in zip(repos, checkouts, strict=True):
            found = found.merged(checkout.skills)
            key = (session_id, job.key)
            if key not in self._tasks and checkout.path is not None:
                # No copy into the sandbox is under way here (another process made it, or none
                # will): the checkout is not kept on disk for one that may never come. It is
                # forgotten before it is deleted (no await in between), so a copy that starts
                # while it is being deleted checks out anew instead of copying half a tree.
                self._checkouts.pop(key, None)
                await asyncio.to_thread(shutil.rmtree, checkout.path, True)
        return found

    async def mount(
        self, sandbox: SandboxBackend, session_id: str, repos: Sequence[RepoJob], *, report: bool = True
    ) -> list[EventRecord]:
        """Clone and copy each repository (once); the error events not reported yet (reporting
        them is the caller's job: only a ``report`` caller marks them reported)."""
        tasks = []
        for job in repos:
            key = (session_id, job.key)
            if key not in self._tasks:
                self._tasks[key] = asyncio.create_task(self._mount(sandbox, session_id, job))
            tasks.append(self._tasks[key])
        results = await asyncio.gather(*tasks)
        events = []
        for job, error in zip(repos, results, strict=True):
            if error is not None and (session_id, job.key) not in self._reported:
                if report:
                    self._reported.add((session_id, job.key))
                events.append(error_event(job, error))
        return events

    async def forget(self, session_id: str) -> None:
        for key in [k for k in self._tasks if k[0] == session_id]:
            self._tasks.pop(key)
        for key in [k for k in self._checkouts if k[0] == session_id]:
            checkout = self._checkouts.pop(key)
            if not checkout.done() or checkout.cancelled() or checkout.exception() is not None:
                continue
            if (path := checkout.result().path) is not None:  # scanned, never copied
                await asyncio.to_thread(shutil.rmtree, path, True)
        self._reported = {k for k in self._reported if k[0] != session_id}
