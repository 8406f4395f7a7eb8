"""Before a turn's first model request: make the agent's MCP servers ready (see app/mcp/hub.py).

Servers that cannot be used are reported as `session.error` events and the turn goes on without
their tools; they are tried again when the session next starts running.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.agent_loop.deps import LoopDeps
from app.events import service as events
from app.events.types import EventRecord, newest_first
from app.sessions import leases
from app.sessions.leases import Claim
from app.shared.agent_config import SessionAgent


@dataclass(frozen=True)
class McpPlan:
    agent: SessionAgent
    vault_ids: list[str]
    turn: str


def turn_marker(history: list[EventRecord]) -> str:
    """The latest `session.status_running` event: each one starts a turn (or resumes one)."""
    return next((e["id"] for e in newest_first(history) if e["type"] == "session.status_running"), "start")


class McpStep:
    def __init__(self, deps: LoopDeps, claim: Claim) -> None:
        self.deps = deps
        self.claim = claim

    def plan(
        self, agent: SessionAgent, vault_ids: list[str], history: list[EventRecord]
    ) -> McpPlan | None:
        turn = turn_marker(history)
        if not self.deps.mcp.needs_setup(self.claim.session_id, agent, turn):
            return None
        return McpPlan(agent, list(vault_ids), turn)

    async def run(self, plan: McpPlan) -> bool:
        errors = await self.deps.mcp.setup_turn(self.claim.session_id, plan.agent, plan.vault_ids, plan.turn)
        if errors:
            async with self.deps.database.unit_of_work() as db:
                row = await leases.fence(db, self.claim)
                await events.append(db, self.deps.notifier, row.id, errors)
        return True
