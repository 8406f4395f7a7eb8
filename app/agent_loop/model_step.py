"""One model request of a turn: span start, streamed previews, the response's events, span end.

Errors: 529/429/5xx/connection failures are retried with backoff (`session.error` retrying ->
`session.status_rescheduled`, the lease released until the backoff ends), then `retries_exhausted`;
other 4xx fail the turn at once. An interrupt stops the stream immediately.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import TYPE_CHECKING, Literal

from sqlalchemy.ext.asyncio import AsyncSession

from app.agent_loop import interrupts, judge, memory, requests, tools
from app.agent_loop.actions import span_end
from app.agent_loop.deps import LoopDeps
from app.agent_loop.ledger import Ledger
from app.agent_loop.model_client import (
    MessageComplete,
    ModelError,
    ModelEvent,
    ModelOverloaded,
    ModelRateLimited,
    ModelRequest,
    ModelUsage,
    RetryableModelError,
    TextDelta,
    TextStart,
    ThinkingStart,
    complete,
)
from app.agent_loop.server_tools import count_searches, server_tool_events
from app.agent_loop.skill_scan import can_list
from app.agent_loop.skills import prompt_section
from app.agent_loop.state import SERVER_RUN_TYPES, analyse
from app.agent_loop.tool_step import ToolPlan, ToolStep
from app.agent_loop.usage import accumulate, request_cost, span_usage
from app.db.base import utcnow
from app.db.models import Session
from app.environments import service as environments
from app.events import service as events
from app.events.notifier import ContentDelta
from app.events.types import ContentBlock, EventRecord, Harness, Judgement, harness_of
from app.mcp import tools as mcp_tools
from app.mcp.events import mcp_tool_use_event
from app.sessions import leases, resources, threads, transitions
from app.sessions.leases import Claim
from app.shared.agent_config import SessionAgent
from app.skills import references as skill_refs
from app.skills.discovery import RepoSkills

if TYPE_CHECKING:
    from app.agent_loop.runner import Plan

log = logging.getLogger(__name__)

# The runner's next decision, made in the transaction that recorded what a step did (the session's
# row, if that transaction fenced it already). None: it was not made there; the next step makes it.
Then = Callable[[AsyncSession, Session | None], Awaitable["Plan | None"]]


@dataclass
class Preview:
    """Ids announced with `event_start` before the events exist, and the text block ordinals."""

    message_id: str = field(default_factory=events.new_event_id)
    thinking_id: str = field(default_factory=events.new_event_id)
    message_started: bool = False
    thinking_started: bool = False
    text_ordinals: dict[int, int] = field(default_factory=dict)


@dataclass(frozen=True)
class ModelPlan:
    """A request ready to stream (its span opened), or, without a request, a compaction to run."""

    agent: SessionAgent
    history: list[EventRecord]  # the whole log (the permission judge reads what was asked)
    window: list[EventRecord]  # the part of it the model can still see (see `Ledger.window`)
    request: ModelRequest | None
    start_id: str | None


class Interrupted(Exception):
    pass


class ModelStep:
    def __init__(self, deps: LoopDeps, claim: Claim) -> None:
        self.deps = deps
        self.claim = claim
        self.session_id = claim.session_id
        # The runner's ledger of this session (set at each step), for the failure path's count.
        self.ledger: Ledger | None = None
        # The runner's tool step: MCP calls allowed outright start in the response's transaction.
        self.tools: ToolStep | None = None
        self.then: Then | None = None
        # The claim's interrupt announcements (set by the runner for its run), else None.
        self.announced: asyncio.Event | None = None
        # The environment's config type, read once per claim: it cannot change (an update that
        # tries is refused); the config itself is read fresh where a sandbox is built from it.
        self._environment_type: str | None = None

    async def prepare(
        self,
        db: AsyncSession,
        row: Session,
        history: list[EventRecord],
        window: list[EventRecord] | None = None,
    ) -> ModelPlan:
        """In the deciding step's transaction: open the request's span (or plan a compaction).
        ``window``: the part of ``history`` from where the model's context starts (all of it when
        not given); the request is built from it."""
        window = history if window is None else window
        if requests.needs_compaction(window, self.deps.settings):
            return ModelPlan(row.agent, history, window, None, None)
        server_search = self.deps.settings.uses_real_api()
        cloud = await self._config_type(db, row) != "self_hosted"
        mcp_tools = self.deps.mcp.definitions(row.id, row.agent)
        listed = await skill_refs.describe(db, row.agent.get("skills") or [])
        mounted = resources.memory_mounts(row)
        repo = await self._repo_skills(db, row)
        found = (prompt_section(listed, cloud=cloud, repo=repo), memory.prompt_section(mounted))
        sections = [s for s in found if s is not None]
        request = requests.build(
            row.agent,
            window,
            server_web_search=server_search,
            mcp_tools=mcp_tools,
            cloud=cloud,
            sections=sections,
        )
        start = await events.append(db, self.deps.notifier, row.id, [{"type": "span.model_request_start"}])
        return ModelPlan(row.agent, history, window, request, start[0]["id"])

    async def _config_type(self, db: AsyncSession, row: Session) -> str:
        if self._environment_type is None:
            self._environment_type = await environments.config_type(db, row.environment_id)
        return self._environment_type

    async def _repo_skills(self, db: AsyncSession, row: Session) -> RepoSkills | None:
        """The skills found in the session's repositories (a thread's: its session's), if the
        row's agent can read skills."""
        if not can_list(row):
            return None
        owner = await threads.parent_of(db, row) if row.parent_session_id is not None else row
        return resources.repo_skills(owner)

    async def run(self, plan: ModelPlan) -> bool | Plan:
        """False: release the session; a plan: the next step, decided in the transaction that
        recorded the response (a ToolPlan of calls recorded as started there, to run at once)."""
        if plan.request is None or plan.start_id is None:
            try:
                await self._compact(plan.agent, plan.window)
            except ModelError as error:  # retried or given up like any model request
                return await self._record_failure(None, error)
            return True  # decide again from the compacted log
        preview = Preview()
        try:
            final = await self._stream_until_interrupt(plan.request, preview)
        except Interrupted:  # the next decision applies the interrupt
            return await self._record_end(plan.start_id, None) or True
        except ModelError as error:
            return await self._record_failure(plan.start_id, error)
        judged = await self._judge(plan, final)
        return await self._record_end(plan.start_id, (final, preview, judged)) or True

    async def _judge(
        self, plan: ModelPlan, final: MessageComplete
    ) -> dict[str, tuple[Judgement, ModelUsage]]:
        """The `auto` policy's judgement of each call under it, by the model's tool-use id (see
        `judge`). A judge that cannot be reached is no judgement (`ask`, indeterminate)."""
        judged: dict[str, tuple[Judgement, ModelUsage]] = {}
        for use in final.tool_uses:
            if not self._auto(plan.agent, use["name"]):
                continue
            request = judge.request(
                str(plan.agent["model"]["id"]), use["name"], use.get("input") or {}, plan.history
            )
            try:
                answer = await complete(self.deps.model, request)
            except ModelError as error:
                log.warning("session %s: permission judge failed: %s", self.session_id, error.message)
                judged[use["id"]] = (judge.INDETERMINATE.copy(), ModelUsage())
                continue
            judged[use["id"]] = (judge.read_judgement(answer.text), answer.usage)
        return judged

    def _auto(self, agent: SessionAgent, name: str) -> bool:
        if tools.is_custom(agent, name):
            return False
        mcp_tool = self.deps.mcp.lookup(self.session_id, agent, name)
        if mcp_tool is not None:
            found = mcp_tools.config(agent, *mcp_tool)
            return found.enabled and found.policy == "auto"
        return tools.judged_by_server(agent, name)

    async def _compact(self, agent: SessionAgent, history: list[EventRecord]) -> None:
        summary = await complete(self.deps.model, requests.summary_request(agent, history))
        async with self.deps.database.unit_of_work() as db:
            row = await leases.fence(db, self.claim)
            cost = request_cost(self.deps.settings.prices, str(agent["model"]["id"]), summary.usage)
            transitions.charge(row, accumulate(row.usage, summary.usage, cost))  # the summary is billed too
            await events.append(
                db,
                self.deps.notifier,
                row.id,
                [{"type": "agent.thread_context_compacted", "harness": {"summary": summary.text}}],
            )

    # -- streaming -----------------------------------------------------------------------------
    async def _stream_until_interrupt(self, request: ModelRequest, preview: Preview) -> MessageComplete:
        streaming = asyncio.create_task(self._consume(request, preview))
        interrupt = interrupts.wait_for_interrupt(self.deps, self.session_id, self.announced)
        watching = asyncio.create_task(interrupt)
        try:
            done, _ = await asyncio.wait({streaming, watching}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            watching.cancel()
            if not streaming.done():
                streaming.cancel()  # closes the HTTP response at once
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await watching
        if streaming not in done:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await streaming
            raise Interrupted
        return streaming.result()

    async def _consume(self, request: ModelRequest, preview: Preview) -> MessageComplete:
        async with self.deps.model.stream(request) as stream:
            async for event in stream:
                if isinstance(event, MessageComplete):
                    return event
                self._publish_preview(event, preview)
        raise ModelError("the model stream ended without a final message")

    def _publish_preview(self, event: ModelEvent, preview: Preview) -> None:
        publish = self.deps.notifier.publish_ephemeral
        if isinstance(event, TextStart):
            if not preview.message_started:
                preview.message_started = True
                publish(
                    self.session_id,
                    {"type": "event_start", "event": {"type": "agent.message", "id": preview.message_id}},
                )
            preview.text_ordinals[event.index] = len(preview.text_ordinals)
        elif isinstance(event, TextDelta) and event.index in preview.text_ordinals:
            delta: ContentDelta = {
                "type": "content_delta",
                "index": preview.text_ordinals[event.index],
                "content": {"type": "text", "text": event.text},
            }
            publish(self.session_id, {"type": "event_delta", "event_id": preview.message_id, "delta": delta})
        elif isinstance(event, ThinkingStart) and not preview.thinking_started:
            preview.thinking_started = True
            publish(
                self.session_id,
                {"type": "event_start", "event": {"type": "agent.thinking", "id": preview.thinking_id}},
            )

    # -- recording -----------------------------------------------------------------------------
    async def _record_end(
        self,
        start_id: str,
        result: tuple[MessageComplete, Preview, dict[str, tuple[Judgement, ModelUsage]]] | None,
    ) -> Plan | None:
        """Record the response (None: the request was interrupted) and decide what comes next
        in the same transaction: its calls, when they start at once, else `then`."""
        plan: ToolPlan | None = None
        try:
            async with self.deps.database.unit_of_work() as db:
                row = await leases.fence(db, self.claim)
                plan = await self._record_response(db, row, start_id, result)
                if plan is None:
                    return None if self.then is None else await self.then(db, row)
                if plan.mcp_only:
                    # The MCP requests leave before the streams send these events (tool_step).
                    plan = replace(plan, held=self.deps.notifier.hold(row.id))
        except BaseException:
            if plan is not None and plan.held is not None:
                plan.held.release()
            raise
        return plan

    async def _record_response(
        self,
        db: AsyncSession,
        row: Session,
        start_id: str,
        result: tuple[MessageComplete, Preview, dict[str, tuple[Judgement, ModelUsage]]] | None,
    ) -> ToolPlan | None:
        """The response's events (or the span's end alone); its calls as started, when they are
        all allowed outright."""
        if result is None:
            await events.append(db, self.deps.notifier, row.id, [span_end(start_id, is_error=False)])
            return None
        client_run = await self._config_type(db, row) == "self_hosted"  # the client runs the tools
        batch = self._response_events(row, start_id, *result, client_run=client_run)
        await events.append(db, self.deps.notifier, row.id, batch)
        transitions.await_client(row, _blocking_ids(batch))
        if self.tools is None:
            return None
        return await self.tools.prepare_at_once(db, row, batch)

    def _response_events(
        self,
        row: Session,
        start_id: str,
        final: MessageComplete,
        preview: Preview,
        judged: dict[str, tuple[Judgement, ModelUsage]],
        *,
        client_run: bool,
    ) -> list[EventRecord]:
        agent = row.agent
        batch: list[EventRecord] = []
        if any(b.get("type") in ("thinking", "redacted_thinking") for b in final.content):
            batch.append({"id": preview.thinking_id, "type": "agent.thinking"})
        texts: list[ContentBlock] = [
            {"type": "text", "text": b["text"]} for b in final.content if b.get("type") == "text"
        ]
        if texts:
            batch.append({"id": preview.message_id, "type": "agent.message", "content": texts})
        for use in final.tool_uses:
            mcp_tool = (
                None
                if tools.is_custom(agent, use["name"])
                else self.deps.mcp.lookup(row.id, agent, use["name"])
            )
            event = _tool_use_event(agent, use, start_id, client_run, mcp_tool)
            if use["id"] in judged:
                event = judge.apply(event, judged[use["id"]][0])
            batch.append(event)
        server_uses, server_results = server_tool_events(final.content, start_id)
        batch.extend(server_uses)
        model_id = str(agent["model"]["id"])
        cost = request_cost(self.deps.settings.prices, model_id, final.usage)
        searches = count_searches(final.content)
        usage = accumulate(row.usage, final.usage, cost, searches=searches)
        for _, judge_usage in judged.values():  # the judge's requests are billed too
            usage = accumulate(
                usage, judge_usage, request_cost(self.deps.settings.prices, model_id, judge_usage)
            )
        transitions.charge(row, usage)
        end = span_end(start_id, span_usage(final.usage, agent["model"].get("speed")), is_error=False)
        end["harness"] = {"content": final.content, "stop_reason": final.stop_reason}
        if final.stop_details is not None:
            end["harness"]["stop_details"] = final.stop_details
        batch.append(end)
        return batch + server_results

    async def _retries(self, db: AsyncSession, session_id: str) -> int:
        """Retrying errors since the latest response: the ledger's count carried over what was
        appended after it (this transaction's failed span end included), or the whole log's."""
        if self.ledger is None:
            return analyse(await events.history(db, session_id)).retries
        more = await events.records_after(db, session_id, self.ledger.last_seq)
        return self.ledger.fold.retries_after(record for _, record in more)

    async def _record_failure(self, start_id: str | None, error: ModelError) -> bool:
        """`start_id` is None for a compaction request, which has no span of its own."""
        async with self.deps.database.unit_of_work() as db:
            row = await leases.fence(db, self.claim)
            if start_id is not None:
                await events.append(db, self.deps.notifier, row.id, [span_end(start_id, is_error=True)])
            retries = await self._retries(db, row.id) + 1
            if isinstance(error, RetryableModelError) and retries <= self.deps.settings.max_model_retries:
                await self._retry_later(db, row, error, retries)
                return False
            await self._give_up(db, row, error)
            return True

    async def _retry_later(self, db: AsyncSession, row: Session, error: ModelError, retries: int) -> None:
        await events.append(db, self.deps.notifier, row.id, [_session_error(error, "retrying")])
        await transitions.reschedule(db, self.deps.notifier, row)
        delay = self.deps.settings.retry_base_seconds * (2 ** (retries - 1))
        if isinstance(error, RetryableModelError) and error.retry_after:
            delay = max(delay, error.retry_after)
        leases.release(row, utcnow() + timedelta(seconds=delay))

    async def _give_up(self, db: AsyncSession, row: Session, error: ModelError) -> None:
        """This turn is dead: queued inputs are flushed and the session returns to idle."""
        await events.append(db, self.deps.notifier, row.id, [_session_error(error, "exhausted")])
        queued = [e["id"] for e in await events.queued(db, row.id) if e["type"] != "user.interrupt"]
        await events.mark_processed(db, self.deps.notifier, row.id, queued)
        await transitions.go_idle(db, self.deps.notifier, row, {"type": "retries_exhausted"})


def _tool_use_event(
    agent: SessionAgent,
    use: ContentBlock,
    start_id: str,
    client_run: bool,
    mcp_tool: tuple[str, str] | None = None,
) -> EventRecord:
    """`client_run`: a self-hosted environment, whose client runs the built-in tools and answers
    with `user.tool_result`. `mcp_tool`: the (server, tool) an MCP call names; MCP tools always run
    here. Ids are given here so the blocking ones can be recorded at once."""
    harness: Harness = {"tool_use_id": use["id"], "request": start_id}
    event: EventRecord
    if mcp_tool is not None:
        event = mcp_tool_use_event(agent, use, *mcp_tool)
    elif tools.is_custom(agent, use["name"]):
        event = {"type": "agent.custom_tool_use", "name": use["name"], "input": use.get("input") or {}}
    else:
        permission, evaluation = tools.evaluate(agent, use["name"])
        event = {"type": "agent.tool_use", "name": use["name"], "input": use.get("input") or {}}
        event["evaluated_permission"] = permission
        if evaluation is not None:
            event["evaluation"] = evaluation
        if client_run and permission != "deny" and not tools.is_orchestration(agent, use["name"]):
            harness["client_run"] = True
    return {**event, "id": events.new_event_id(), "harness": harness}


def _blocking_ids(batch: list[EventRecord]) -> list[str]:
    """Calls the client must answer: custom tools, always_ask, and client-run (self-hosted) tools."""
    return [
        e["id"]
        for e in batch
        if e["type"] == "agent.custom_tool_use"
        or (
            e["type"] in SERVER_RUN_TYPES
            and (e.get("evaluated_permission") == "ask" or harness_of(e).get("client_run"))
        )
    ]


def _session_error(error: ModelError, retry: Literal["retrying", "exhausted"]) -> EventRecord:
    if isinstance(error, ModelOverloaded):
        kind = "model_overloaded_error"
    elif isinstance(error, ModelRateLimited):
        kind = "model_rate_limited_error"
    else:
        kind = "model_request_failed_error"
    return {
        "type": "session.error",
        "error": {"type": kind, "message": error.message, "retry_status": {"type": retry}},
    }
