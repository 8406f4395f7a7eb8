"""Runs a claimed session one step at a time until it has nothing left to do.

Each step opens a unit of work, fences on the lease, reads what was appended to the log since the
last step (into the session's `Ledger`, which the worker keeps between claims), decides the next
action (`decide`) and carries it out. Model calls and tool executions happen outside any transaction:
one step records that they start, another records what came of them. Because the decision is
made from the log alone, a worker that crashes anywhere leaves a log from which the next worker
resumes (see `state.py`).

Decisions that only write ("continue": the session starts running, an input is taken, the turn
goes idle) are chained in one transaction behind one fence, each made from the log as the one
before left it (the ledger reads this transaction's own appends); so is the decision that follows a
recorded model response or tool results, made in the transaction that recorded them. A one-tool
turn takes four transactions: start running and open the request; record the response and start
the call; record its result and open the next request; record the answer, go idle and release.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from app.agent_loop import actions, orchestration, requests, tools, workflow
from app.agent_loop.deps import LoopDeps
from app.agent_loop.grade_step import GradePlan, GradeStep
from app.agent_loop.ledger import Ledger, Ledgers
from app.agent_loop.mcp_step import McpPlan, McpStep
from app.agent_loop.model_step import ModelPlan, ModelStep
from app.agent_loop.skill_scan import SkillScanPlan, SkillScanStep
from app.agent_loop.state import TurnState
from app.agent_loop.tool_step import ToolPlan, ToolStep
from app.db.models import Session
from app.db.session_json import StoredOutcomeEvaluation
from app.events import service as events
from app.events.types import EventRecord, harness_of, newest_first
from app.sessions import budgets, leases, outcomes, threads, transitions
from app.sessions.leases import Claim

log = logging.getLogger(__name__)


Decision = str | ToolPlan | ModelPlan | McpPlan | SkillScanPlan
Plan = Decision | GradePlan
# At most this many decisions in one transaction (each wrote and continues): a step never holds
# the session's lock (on SQLite, the database's write lock) for long.
CHAIN_LIMIT = 8


@dataclass
class Snapshot:
    row: Session
    history: list[EventRecord]  # the whole log (the ledger's: read it, never change it)
    window: list[EventRecord]  # the part of the log the model can still see (see `Ledger.window`)
    queued: list[EventRecord]
    state: TurnState

    @property
    def interrupt(self) -> EventRecord | None:
        return next((e for e in self.queued if e["type"] == "user.interrupt"), None)

    @property
    def inputs(self) -> list[EventRecord]:
        """Queued user and system messages, up to the first interrupt (later ones wait for it)."""
        out = []
        for event in self.queued:
            if event["type"] == "user.interrupt":
                break
            out.append(event)
        return out

    def last_idle_reason(self) -> str | None:
        # A child thread's log has its own thread idles only; a session's has session idles.
        kind = "session.thread_status_idle" if self.row.parent_session_id else "session.status_idle"
        for event in newest_first(self.history):
            if event["type"] == kind:
                stop = event.get("stop_reason")
                return None if stop is None else stop["type"]
        return None


class SessionRunner:
    def __init__(self, deps: LoopDeps, claim: Claim, ledgers: Ledgers | None = None) -> None:
        self.deps = deps
        self.claim = claim
        self.model_step = ModelStep(deps, claim)
        self.tool_step = ToolStep(deps, claim)
        self.model_step.tools = self.tool_step
        self.mcp_step = McpStep(deps, claim)
        self.skill_scan = SkillScanStep(deps, claim)
        self.grade_step = GradeStep(deps, claim)
        # The transactions that record a response or tool results go on to decide the next step.
        self.model_step.then = self.tool_step.then = self._decide_after
        self.decisions = 0
        self.max_decisions = deps.settings.max_tool_rounds * 4 + 20
        # The log is append-only: read it once (or take up the ledger an earlier claim left), then
        # only what was appended since (by this worker, clients, threads or another worker).
        self.ledgers = ledgers if ledgers is not None else Ledgers(0)
        self._ledger: Ledger | None = None
        self._stopping = False
        self.left_work = False  # run() returned because the worker stops, not because it is done

    def stop_after_step(self) -> None:
        """The worker is stopping: finish the current step, then return."""
        self._stopping = True

    async def run(self) -> None:
        """Steps until the session is idle with nothing queued, or must wait (backoff)."""
        # Interrupts announced from now on: each step reads the queue after this, so a watch of a
        # model request or tool step reads the log at its start only once one was announced.
        with self.deps.notifier.interrupts(self.claim.session_id) as announced:
            self.model_step.announced = self.tool_step.announced = self.grade_step.announced = announced
            try:
                await self._steps()
            finally:
                self.model_step.announced = self.tool_step.announced = self.grade_step.announced = None

    async def _steps(self) -> None:
        while self.decisions < self.max_decisions:
            if not await self.step():
                return
            if self._stopping:
                self.left_work = True
                return
        log.error("session %s: step limit reached", self.claim.session_id)

    def keep_ledger(self) -> None:
        """The run ended without a fault: leave the ledger for this session's next claim."""
        if self._ledger is not None:
            self.ledgers.keep(self._ledger)

    async def _take_ledger(self, db: AsyncSession, row: Session) -> Ledger:
        if self._ledger is None:
            kept = self.ledgers.take(row.id)
            self._ledger = kept if kept is not None and await kept.matches(db, row) else Ledger(row.id)
        return self._ledger

    async def _snapshot(self, db: AsyncSession, row: Session) -> Snapshot:
        ledger = await self._take_ledger(db, row)
        ledger.extend(await events.records_after(db, row.id, ledger.last_seq))
        if self.deps.settings.ledger_verify:
            ledger = self._ledger = await ledger.verify(db)
        self.model_step.ledger = ledger
        queued = await events.queued(db, row.id)
        return Snapshot(row, ledger.history, ledger.window, queued, ledger.state())

    async def step(self) -> bool:
        """Decide (in one transaction) and carry it out. Returns False when the session should be
        released."""
        async with self.deps.database.unit_of_work() as db:
            outcome = await self._decide(db, await leases.fence(db, self.claim))
        return await self._carry_out(outcome)

    async def _decide(self, db: AsyncSession, row: Session) -> Plan:
        """Decisions on the fenced ``row`` in the caller's transaction, chained while they only
        wrote and continue (up to `CHAIN_LIMIT`, and not once the worker stops)."""
        try:
            for _ in range(CHAIN_LIMIT):
                self.decisions += 1
                outcome = await self._decide_and_write(db, await self._snapshot(db, row))
                if outcome != "continue" or self._stopping or self.decisions >= self.max_decisions:
                    break
        except BaseException:
            self._ledger = None  # it may hold this transaction's appends, which roll back
            raise
        return outcome

    async def _decide_after(self, db: AsyncSession, row: Session | None) -> Plan | None:
        """The next decision, in the transaction that recorded a model response or tool results
        (``row``: the session's row if that transaction fenced it already). None: none is made
        there (the worker stops or the step limit is reached); the next step decides."""
        if self._stopping or self.decisions >= self.max_decisions:
            return None
        return await self._decide(db, row if row is not None else await leases.fence(db, self.claim))

    async def _carry_out(self, outcome: Plan) -> bool:
        """Run plans until one ends without a decision of its own (or with a plain one)."""
        while not isinstance(outcome, str):
            done = await self._run_plan(outcome)
            if isinstance(done, bool):
                return done
            outcome = done  # decided in the transaction that recorded what the plan did
        return outcome == "continue"

    async def _run_plan(self, plan: Plan) -> bool | Plan:
        if isinstance(plan, ModelPlan):
            return await self.model_step.run(plan)
        if isinstance(plan, ToolPlan):
            return await self.tool_step.run(plan)
        if isinstance(plan, McpPlan):
            return await self.mcp_step.run(plan)
        if isinstance(plan, SkillScanPlan):
            return await self.skill_scan.run(plan)
        if isinstance(plan, GradePlan):
            return await self.grade_step.run(plan)
        return plan == "continue"

    async def _decide_and_write(self, db: AsyncSession, snap: Snapshot) -> Plan:
        notifier = self.deps.notifier
        if snap.interrupt is not None:
            await actions.interrupt(db, notifier, snap.row, snap.state, snap.interrupt, snap.history)
            return "continue"
        if snap.row.status == "idle":
            return await self._from_idle(db, snap)
        if snap.row.status == "terminated":
            leases.release(snap.row, None)
            return "release"
        return await self._from_running(db, snap)

    async def _budget_owner(self, db: AsyncSession, row: Session) -> Session:
        """The row whose budget covers this one: a thread spends its session's."""
        return await threads.parent_of(db, row) if row.parent_session_id is not None else row

    async def _from_idle(self, db: AsyncSession, snap: Snapshot) -> Plan:
        notifier = self.deps.notifier
        resumable = (
            snap.last_idle_reason() == "requires_action"
            and snap.state.tool_uses
            and not snap.state.unanswered_blocking()
        )
        if not resumable and snap.last_idle_reason() == "budget_reached":  # raised or removed since?
            resumable = not await budgets.reached(db, await self._budget_owner(db, snap.row))
        if snap.inputs or resumable or _outcome(snap.row, "pending") is not None:
            await transitions.start_running(db, notifier, snap.row)
            await events.mark_processed(db, notifier, snap.row.id, [e["id"] for e in snap.inputs])
            return "continue"
        leases.release(snap.row, None)
        return "release"

    async def _from_running(self, db: AsyncSession, snap: Snapshot) -> Plan:
        notifier, row, state = self.deps.notifier, snap.row, snap.state
        if row.status == "rescheduling":
            await transitions.start_running(db, notifier, row)
            return "continue"
        grading = _outcome(row, "evaluating")
        if grading is not None:  # a worker stopped mid-grading: grade that iteration again
            return await self.grade_step.prepare(db, row, snap.history, grading)
        if state.open_request is not None:
            await actions.close_open_request(db, notifier, row, state.open_request)
            return "continue"
        if state.refused():
            await actions.refuse(db, notifier, row, state)
            return "continue"
        if state.runnable():
            return await self.tool_step.prepare(db, row, state) or "continue"
        if snap.inputs:  # steering: joins the turn after the in-flight tool results
            await events.mark_processed(db, notifier, row.id, [e["id"] for e in snap.inputs])
            return "continue"
        return await self._after_tools(db, snap)

    async def _after_tools(self, db: AsyncSession, snap: Snapshot) -> Plan:
        state = snap.state
        blocking = state.unanswered_blocking()
        if blocking:
            await actions.wait_for_client(db, self.deps.notifier, snap.row, blocking)
            return "release"
        paused = (
            state.last_response is not None
            and harness_of(state.last_response).get("stop_reason") == "pause_turn"
        )
        if state.tool_uses or state.last_response is None or state.input_after_response or paused:
            settings = self.deps.settings
            if state.requests_since_input >= settings.max_tool_rounds:
                await actions.tool_limit_reached(db, self.deps.notifier, snap.row)
                return "continue"
            if await budgets.reached(db, await self._budget_owner(db, snap.row)):
                await transitions.go_idle(db, self.deps.notifier, snap.row, {"type": "budget_reached"})
                return "continue"
            if (
                requests.needs_compaction(snap.history, settings)
                and requests.compactions_in_a_row(snap.history) >= settings.max_compactions_in_a_row
            ):
                await actions.compaction_limit_reached(db, self.deps.notifier, snap.row)
                return "continue"
            scan = await self.skill_scan.plan(db, snap.row)
            if scan is not None:  # the repositories' skills are listed from the first request on
                return scan
            outcomes.begin_work(snap.row)
            mcp = self.mcp_step.plan(snap.row.agent, snap.row.vault_ids, snap.history)
            if mcp is not None:
                return mcp
            return await self.model_step.prepare(db, snap.row, snap.history, snap.window)
        row = snap.row
        if tools.orchestrates(row.agent):
            deadline = await workflow.expire(db, self.deps.notifier, row)  # runs past their time
            if await threads.busy(db, row.id):
                leases.release(row, deadline)  # woken by its threads' replies; running meanwhile
                return "release"
        working = _outcome(row, "running")
        if working is not None:  # the agent ended an iteration of an outcome: grade it
            if await budgets.reached(db, row):
                await transitions.go_idle(db, self.deps.notifier, row, {"type": "budget_reached"})
                return "continue"
            return await self.grade_step.prepare(db, row, snap.history, working)
        stop_reason, stop_details = actions.stop_of(state.last_response)
        if row.parent_session_id is not None:
            await orchestration.reply_to_parent(db, self.deps.notifier, row, state.last_response)
        await transitions.go_idle(db, self.deps.notifier, row, stop_reason, stop_details)
        return "continue"


def _outcome(row: Session, result: str) -> StoredOutcomeEvaluation | None:
    """The session's outcome in progress if it stands at ``result`` (threads have none)."""
    current = outcomes.active(row) if row.parent_session_id is None else None
    return current if current is not None and current["result"] == result else None
