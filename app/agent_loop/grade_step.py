"""The outcome grader's step: when the agent ends a turn with an outcome in progress, a grader
with its own context (the rubric and the transcript of the work, no tools) judges the iteration
through the session's model client.

Like a model request, it is recorded in two steps: the deciding step opens the evaluation
(`span.outcome_evaluation_start`, the outcome `evaluating`); this step then asks the grader
outside any transaction, sending `span.outcome_evaluation_ongoing` heartbeats meanwhile, and
records `span.outcome_evaluation_end`. A worker that stops mid-grading leaves the evaluation open
in the log; the next worker grades that same iteration again under the same start (no second
start, no lost verdict). An interrupt stops the grader at once; the loop then ends the outcome
as `interrupted`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession

from app.agent_loop import grader, interrupts
from app.agent_loop.deps import LoopDeps
from app.agent_loop.model_client import (
    MessageComplete,
    ModelError,
    ModelRequest,
    ModelUsage,
    RetryableModelError,
    complete,
)
from app.agent_loop.usage import accumulate, request_cost, span_usage
from app.db.models import Session
from app.db.session_json import StoredOutcomeEvaluation
from app.events import service as events
from app.events.types import EventRecord, SpanModelUsage
from app.files import service as files
from app.sessions import leases, outcomes, transitions
from app.sessions.leases import Claim
from app.storage import service as storage

log = logging.getLogger(__name__)

MAX_RUBRIC_CHARS = 262_144


@dataclass(frozen=True)
class GradePlan:
    """An open evaluation to grade. The rubric is its text, or the content digest of its file."""

    outcome_id: str
    iteration: int
    start_id: str
    model: str
    work: str
    rubric: str
    rubric_digest: str | None = None
    # (path, content digest, size) of each file in /mnt/session/outputs
    outputs: tuple[tuple[str, str, int], ...] = ()


class _Interrupted(Exception):
    pass


class GradeStep:
    def __init__(self, deps: LoopDeps, claim: Claim) -> None:
        self.deps = deps
        self.claim = claim
        # The claim's interrupt announcements (set by the runner for its run), else None.
        self.announced: asyncio.Event | None = None

    async def prepare(
        self, db: AsyncSession, row: Session, history: list[EventRecord], entry: StoredOutcomeEvaluation
    ) -> GradePlan:
        """In the deciding step's transaction: open the evaluation of the current iteration (or
        take up the one a stopped worker left open)."""
        outcome_id, iteration = entry["outcome_id"], entry["iteration"]
        start = grader.open_start(history, outcome_id)
        if start is None:
            opened: EventRecord = {"type": grader.START, "outcome_id": outcome_id, "iteration": iteration}
            start = (await events.append(db, self.deps.notifier, row.id, [opened]))[0]
            outcomes.evaluating(row, outcome_id)
        rubric, digest = await _rubric(db, history, outcome_id)
        return GradePlan(
            outcome_id=outcome_id,
            iteration=int(start.get("iteration", iteration)),
            start_id=str(start["id"]),
            model=str(row.agent["model"]["id"]),
            work=grader.transcript(history, outcome_id),
            rubric=rubric,
            rubric_digest=digest,
            outputs=tuple(await files.output_digests(db, row.id)),
        )

    async def run(self, plan: GradePlan) -> bool:
        rubric = await self._rubric_text(plan)
        delivered = grader.deliverables(await self._outputs(plan))
        request = grader.request(plan.model, rubric, plan.iteration, plan.work, delivered)
        await self._heartbeat(plan)
        try:
            answer = await self._ask_until_interrupt(plan, request)
        except _Interrupted:
            return True  # the next step applies the interrupt (the outcome ends `interrupted`)
        except ModelError as error:
            await self._record_failure(plan, error)
            return True
        verdict, explanation = grader.read_verdict(answer.text)
        await self._record(plan, verdict, explanation, answer)
        return True

    async def _rubric_text(self, plan: GradePlan) -> str:
        if plan.rubric_digest is None:
            return plan.rubric
        try:
            found = await storage.read_many(self.deps.blobs, [plan.rubric_digest])
        except storage.MissingContent:
            return plan.rubric
        return found[plan.rubric_digest].decode("utf-8", errors="replace")[:MAX_RUBRIC_CHARS]

    async def _outputs(self, plan: GradePlan) -> list[tuple[str, bytes, int]]:
        """The head of each output file (files gone from the store are left out); once the
        grader's share is read, later files are only named."""
        found: list[tuple[str, bytes, int]] = []
        for path, digest, size in plan.outputs:
            if sum(len(c) for _, c, _ in found) >= grader.MAX_DELIVERABLE_CHARS:
                found.append((path, b"", size))
                continue
            try:
                content = await asyncio.to_thread(
                    _head, self.deps.blobs.local_path(digest), grader.MAX_DELIVERABLE_READ
                )
            except OSError:
                continue
            found.append((path, content, size))
        return found

    # -- asking, with heartbeats -----------------------------------------------------------------
    async def _ask_until_interrupt(self, plan: GradePlan, request: ModelRequest) -> MessageComplete:
        asking = asyncio.create_task(self._ask(request))
        watching = asyncio.create_task(self._watch(plan))
        try:
            done, _ = await asyncio.wait({asking, watching}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            watching.cancel()
            if not asking.done():
                asking.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await watching
        if asking not in done:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asking
            raise _Interrupted
        return asking.result()

    async def _ask(self, request: ModelRequest) -> MessageComplete:
        """The grader's answer; transient failures are retried with backoff within the step."""
        settings = self.deps.settings
        for attempt in range(settings.max_model_retries + 1):
            try:
                return await complete(self.deps.model, request)
            except RetryableModelError as error:
                if attempt == settings.max_model_retries:
                    raise
                delay = settings.retry_base_seconds * (2**attempt)
                await asyncio.sleep(max(delay, error.retry_after or 0.0))
        raise AssertionError("unreachable")  # pragma: no cover

    async def _watch(self, plan: GradePlan) -> None:
        """Returns when an interrupt is queued; sends a heartbeat every interval meanwhile."""
        interval = self.deps.settings.outcome_heartbeat_seconds
        interrupt = interrupts.wait_for_interrupt(self.deps, self.claim.session_id, self.announced)
        waiting = asyncio.create_task(interrupt)
        try:
            while True:
                done, _ = await asyncio.wait({waiting}, timeout=interval)
                if done:
                    return waiting.result()
                await self._heartbeat(plan)
        finally:
            waiting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await waiting

    async def _heartbeat(self, plan: GradePlan) -> None:
        ongoing: EventRecord = {
            "type": "span.outcome_evaluation_ongoing",
            "outcome_id": plan.outcome_id,
            "iteration": plan.iteration,
        }
        async with self.deps.database.unit_of_work() as db:
            row = await leases.fence(db, self.claim)
            await events.append(db, self.deps.notifier, row.id, [ongoing])

    # -- recording -------------------------------------------------------------------------------
    def _end(self, plan: GradePlan, result: str, explanation: str, usage: SpanModelUsage) -> EventRecord:
        return {
            "type": grader.END,
            "outcome_evaluation_start_id": plan.start_id,
            "outcome_id": plan.outcome_id,
            "iteration": plan.iteration,
            "result": result,
            "explanation": explanation,
            "usage": usage,
        }

    async def _record(self, plan: GradePlan, verdict: str, explanation: str, answer: MessageComplete) -> None:
        notifier = self.deps.notifier
        async with self.deps.database.unit_of_work() as db:
            row = await leases.fence(db, self.claim)
            cost = request_cost(self.deps.settings.prices, plan.model, answer.usage)
            transitions.charge(row, accumulate(row.usage, answer.usage, cost))
            result = await outcomes.judged(db, row, plan.outcome_id, verdict, explanation)
            end = self._end(plan, result, explanation, span_usage(answer.usage, None))
            await events.append(db, notifier, row.id, [end])
            if result not in grader.AGENT_GOES_ON:  # satisfied or failed: the work is over
                await transitions.go_idle(db, notifier, row, {"type": "end_turn"})

    async def _record_failure(self, plan: GradePlan, error: ModelError) -> None:
        """The grader could not be asked: the outcome fails and the turn ends, as a model request
        whose retries are exhausted does."""
        log.warning("session %s: grader failed: %s", self.claim.session_id, error.message)
        explanation = f"The grader could not evaluate the work: {error.message}"
        session_error: EventRecord = {
            "type": "session.error",
            "error": {
                "type": "model_request_failed_error",
                "message": explanation,
                "retry_status": {"type": "exhausted"},
            },
        }
        zero = span_usage(ModelUsage(), None)
        async with self.deps.database.unit_of_work() as db:
            row = await leases.fence(db, self.claim)
            await outcomes.judged(db, row, plan.outcome_id, "failed", explanation)
            await events.append(
                db, self.deps.notifier, row.id, [self._end(plan, "failed", explanation, zero), session_error]
            )
            await transitions.go_idle(db, self.deps.notifier, row, {"type": "retries_exhausted"})


async def _rubric(db: AsyncSession, history: list[EventRecord], outcome_id: str) -> tuple[str, str | None]:
    """The rubric as text, or (for a file rubric) a stand-in text and the file's content digest."""
    defined = next(
        (e for e in history if e["type"] == grader.DEFINE and e.get("outcome_id") == outcome_id), None
    )
    rubric = None if defined is None else defined.get("rubric")
    if rubric is not None and rubric["type"] == "text":
        return str(rubric.get("content", "")), None
    if rubric is None:
        rubric = {"type": "file"}  # no rubric found: no file to read
    file_id = str(rubric.get("file_id"))
    digest = (await files.content_of(db, [file_id])).get(file_id)
    return f"(The rubric file {file_id} is no longer available.)", digest


def _head(path: Path, limit: int) -> bytes:
    with path.open("rb") as handle:
        return handle.read(limit)
