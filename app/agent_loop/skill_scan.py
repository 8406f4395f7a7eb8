"""Before a session's first model request: find the skills in its repositories' ``.claude/skills/``.

The scan runs once, on the checkout the session starts with (``RepoMounter.skills`` clones the
repositories if the provisioner has not yet), outside any transaction; its result is recorded on
the session so every later request, in any worker, lists the same skills. Only cloud sessions
whose agent can use the ``read`` tool scan (skills are read with it); a thread lists its
session's.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from app.agent_loop import repositories
from app.agent_loop.deps import LoopDeps
from app.agent_loop.repositories import RepoJob
from app.agents.tools import read_tool_enabled
from app.db.models import Session
from app.environments import service as environments
from app.sessions import leases, resources
from app.sessions.leases import Claim

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SkillScanPlan:
    repos: list[RepoJob]


def can_list(row: Session) -> bool:
    """Whether the row's agent can use skills at all (they need the ``read`` tool)."""
    return read_tool_enabled(row.agent.get("tools") or [])


class SkillScanStep:
    def __init__(self, deps: LoopDeps, claim: Claim) -> None:
        self.deps = deps
        self.claim = claim

    async def plan(self, db: AsyncSession, row: Session) -> SkillScanPlan | None:
        """In the deciding step's transaction: a scan to run now, or None (done, or none due)."""
        if row.parent_session_id is not None or row.repo_skills is not None:
            return None
        if not resources.repositories(row) or not can_list(row):
            return None
        if await environments.config_type(db, row.environment_id) == "self_hosted":
            return None
        return SkillScanPlan(repositories.jobs(row, self.deps.settings.github_base_url, self.deps.unseal))

    async def run(self, plan: SkillScanPlan) -> bool:
        found = await self.deps.repos.skills(self.claim.session_id, plan.repos)
        for note in found.skipped:
            log.warning("session %s: repository skill skipped: %s", self.claim.session_id, note[:500])
        async with self.deps.database.unit_of_work() as db:
            row = await leases.fence(db, self.claim)
            resources.record_repo_skills(row, found)
        return True
