"""Running the built-in tool calls of a response in the session's sandbox.

The calls about to run are recorded first (`Session.inflight_tool_ids`); their results are
appended together, in call order, once all have finished. A call found in flight when a step
starts was cut off by a crash: it is reported to the model as an error, never run twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from sqlalchemy.ext.asyncio import AsyncSession

from app.agent_loop import actions, interrupts, memory, orchestration, outputs, repositories, tools
from app.agent_loop.context import TOOL_USE_TYPES
from app.agent_loop.credential_hosts import unreachable_errors
from app.agent_loop.deps import LoopDeps
from app.agent_loop.launch import Launch
from app.agent_loop.repositories import RepoJob
from app.agent_loop.state import TurnState
from app.db.models import Session
from app.environments import service as environments
from app.events import service as events
from app.events.notifier import Held
from app.events.types import ErrorObject, EventRecord, harness_of
from app.mcp.events import mcp_tool_result_event
from app.mcp.spill import spill_large_text
from app.observability import measure
from app.sandbox.interface import (
    EgressSecret,
    ImageBuildError,
    MemoryMount,
    MountedFile,
    SandboxError,
    SandboxSpec,
    ToolRequest,
    ToolResult,
)
from app.sessions import leases, resources, threads, transitions
from app.sessions.leases import Claim
from app.sessions.resource_schemas import MemoryStoreResource
from app.shared.agent_config import SessionAgent
from app.shared.environment_config import EnvironmentConfig, NetworkingConfig, package_lists
from app.shared.text import storable_blocks
from app.skills import references as skill_refs
from app.skills.references import SessionSkill
from app.vaults import resolve as vault_credentials
from app.vaults.secrets import SecretBox

if TYPE_CHECKING:
    from app.agent_loop.model_step import Then
    from app.agent_loop.runner import Plan

log = logging.getLogger(__name__)

# While an interrupt lands: how long to wait for the killed calls before cancelling again.
CANCEL_RETRY_SECONDS = 1.0


def tool_request(use: EventRecord) -> ToolRequest:
    """The call as the sandbox runs it; its time limit is the sandbox's to compute (limits.py)."""
    return ToolRequest(name=use["name"], input=dict(use.get("input") or {}))


def result_event(use: EventRecord, result: ToolResult) -> EventRecord:
    return {
        "type": "agent.tool_result",
        "tool_use_id": use["id"],
        "content": storable_blocks(result.content),
        "is_error": result.is_error,
    }


def mcp_hosts(agent: SessionAgent) -> list[str]:
    return [h for h in (urlsplit(s.get("url", "")).hostname for s in agent.get("mcp_servers") or []) if h]


def sandbox_spec(
    environment_id: str,
    config: EnvironmentConfig,
    agent: SessionAgent,
    memory: tuple[MemoryMount, ...] = (),
    secrets: tuple[EgressSecret, ...] | None = None,
) -> SandboxSpec:
    """What a session's sandbox is built from: its environment's config, its agent's MCP hosts,
    its memory mounts and its vaults' environment-variable secrets."""
    cloud = config if config["type"] == "cloud" else None
    return SandboxSpec(
        env_id=environment_id,
        packages=package_lists(cloud["packages"]) if cloud else {},
        networking=cloud["networking"] if cloud else {"type": "unrestricted"},
        mcp_hosts=mcp_hosts(agent),
        memory=memory,
        secrets=secrets,
    )


def _runs_at_once(use: EventRecord) -> bool:
    """An MCP or built-in call allowed by policy that this server runs (not a self-hosted
    environment's client, not a custom tool: those wait on the client)."""
    return (
        use["type"] in ("agent.mcp_tool_use", "agent.tool_use")
        and use.get("evaluated_permission") == "allow"
        and not harness_of(use).get("client_run")
    )


async def egress_secrets(db: AsyncSession, box: SecretBox, vault_ids: list[str]) -> tuple[EgressSecret, ...]:
    """The session's ``environment_variable`` credentials as of now (rotation and archival reach
    a running sandbox at its next step)."""
    found = await vault_credentials.env_credentials(db, box, vault_ids)
    return tuple(EgressSecret(c.secret_name, c.value, c.hosts, c.header, c.body) for c in found)


def _result(outcome: EventRecord | BaseException) -> EventRecord:
    if isinstance(outcome, BaseException):
        raise outcome  # not a sandbox failure: a bug, handled like any crash of the loop
    return outcome


def _abandoned(use: EventRecord) -> EventRecord:
    """An MCP call left running on its server by an interrupt: its answer is not waited for."""
    text = "[interrupted by user.interrupt: the call was abandoned; the MCP server may still complete it]"
    return mcp_tool_result_event(use["id"], [{"type": "text", "text": text}], is_error=True)


@dataclass(frozen=True)
class ToolPlan:
    calls: list[EventRecord]
    spec: SandboxSpec
    vault_ids: list[str]
    agent: SessionAgent
    files: list[MountedFile]
    repos: list[RepoJob]
    skills: list[SessionSkill]
    memory: list[MemoryStoreResource]
    # The session's stream publications, kept back until the MCP requests are out (see `run`).
    held: Held | None = None

    @property
    def mcp_only(self) -> bool:
        return all(u["type"] == "agent.mcp_tool_use" for u in self.calls)

    @property
    def sandbox_calls(self) -> list[EventRecord]:
        return [
            u
            for u in self.calls
            if u["type"] == "agent.tool_use" and not tools.is_orchestration(self.agent, u["name"])
        ]


async def mounted_files(db: AsyncSession, deps: LoopDeps, row: Session) -> list[MountedFile]:
    """The session's file resources, with the host paths of their bytes."""
    mounts = await resources.file_mounts(db, row)
    return [MountedFile(path, sha, deps.blobs.local_path(sha)) for path, sha in mounts]


class ToolStep:
    def __init__(self, deps: LoopDeps, claim: Claim) -> None:
        self.deps = deps
        self.claim = claim
        # The worker lends this session's slot to others while its tools run (worker/slots.py).
        self.lend_slot: Callable[[], AbstractAsyncContextManager[None]] = contextlib.nullcontext
        self.then: Then | None = None  # the runner's next decision, after the results (model_step)
        # The claim's interrupt announcements (set by the runner for its run), else None.
        self.announced: asyncio.Event | None = None

    async def run(self, plan: ToolPlan) -> bool | Plan:
        """Built-in calls in the sandbox (started only if one needs it), MCP calls from here.
        Returns the next step when it was decided in the transaction that recorded the results."""
        try:
            return await self._run(plan)
        finally:
            if plan.held is not None:  # already released once the requests were out
                plan.held.release()

    async def _run(self, plan: ToolPlan) -> bool | Plan:
        calls = plan.calls
        errors: list[EventRecord] = []
        notes: list[str] = []
        sandbox, session_id = self.deps.sandbox, self.claim.sandbox_id  # threads share the parent's
        if plan.sandbox_calls:
            try:
                await sandbox.ensure(session_id, plan.spec, self._progress)
                await sandbox.sync_files(session_id, plan.files)
                await self.deps.memory.place(sandbox, session_id, plan.memory)
            except (SandboxError, OSError) as error:
                await self._sandbox_failed(calls, error)
                return True
            errors = await self.deps.repos.mount(sandbox, session_id, plan.repos)
            await self.deps.skills.mount(sandbox, session_id, plan.skills)
            notes = await self.deps.memory.sync(sandbox, session_id, plan.memory)  # written since
        async with self.lend_slot():
            outcomes = await self._execute_until_interrupt(plan)
        failure = next((o for o in outcomes if isinstance(o, SandboxError)), None)
        if failure is not None:  # the engine failed (not the tool): the turn ends with an error
            await self._sandbox_failed(calls, failure)
            return True
        results = [_result(o) for o in outcomes]
        if plan.sandbox_calls:  # the memory versions exist before the results are seen
            notes += await self.deps.memory.sync(sandbox, session_id, plan.memory)
            memory.with_notes(results, notes)
        async with self.deps.database.unit_of_work() as db:
            # The fence, the positions and "no call in flight" in one statement on the row.
            batch = [*errors, *results]
            last = await leases.fenced_seqs(db, self.claim, len(batch), tools_finished=True)
            await events.append_reserved(db, self.deps.notifier, self.claim.session_id, batch, last)
            decided = None if self.then is None else await self.then(db, None)
        if plan.sandbox_calls:  # only tools in the sandbox write outputs (before the next step runs)
            await self._collect_outputs()
        return True if decided is None else decided

    async def _collect_outputs(self) -> None:
        try:
            await outputs.collect(self.deps, self.deps.outputs, self.claim.sandbox_id)
        except Exception:  # outputs are kept on the next step's look; the turn goes on
            log.exception("session %s: collecting outputs failed", self.claim.session_id)

    async def prepare(
        self, db: AsyncSession, row: Session, state: TurnState, config: EnvironmentConfig | None = None
    ) -> ToolPlan | None:
        """In the deciding step's transaction: record which calls start now (None: the calls
        were cut off by a crash and have been reported as errors instead). ``config``: the
        environment's sandbox config, when this transaction has read it already."""
        calls = state.runnable()
        cut_off = [u for u in calls if u["id"] in row.inflight_tool_ids]
        if cut_off:
            await actions.unknown_outcomes(db, self.deps.notifier, row, cut_off)
            return None
        transitions.tools_started(row, [u["id"] for u in calls])
        # A thread works in its session's sandbox, with the session's files and repositories.
        owner = await threads.parent_of(db, row) if row.parent_session_id is not None else row
        if config is None:
            config = await environments.sandbox_config(db, row.environment_id)
        mounted = resources.memory_mounts(owner)
        sandboxed = any(u["type"] == "agent.tool_use" for u in calls)
        # Resolved for built-in calls only; None leaves the sandbox's as they are (an MCP spill).
        secrets = None
        if sandboxed:
            found = await vault_credentials.env_credentials(db, self.deps.mcp.box, list(owner.vault_ids))
            secrets = tuple(EgressSecret(c.secret_name, c.value, c.hosts, c.header, c.body) for c in found)
            if found and state.requests_since_input <= 1:  # once per turn: its first tool step
                await self._report_unreachable(db, row, found, config, owner.agent)
        spec = sandbox_spec(row.environment_id, config, owner.agent, memory.sandbox_mounts(mounted), secrets)
        if not sandboxed:
            # MCP calls only: they run from here, so no repository token is opened and no file
            # mount is read (the spec stays: a large MCP result spills into the sandbox).
            return ToolPlan(calls, spec, list(row.vault_ids), row.agent, [], [], [], mounted)
        repos = repositories.jobs(owner, self.deps.settings.github_base_url, self.deps.unseal)
        files = await mounted_files(db, self.deps, owner)
        listed = await skill_refs.describe(db, owner.agent.get("skills") or [])
        return ToolPlan(calls, spec, list(row.vault_ids), row.agent, files, repos, listed, mounted)

    async def _report_unreachable(
        self,
        db: AsyncSession,
        row: Session,
        found: list[vault_credentials.EnvCredential],
        config: EnvironmentConfig,
        agent: SessionAgent,
    ) -> None:
        networking: NetworkingConfig = (
            config["networking"] if config["type"] == "cloud" else {"type": "unrestricted"}
        )
        errors = unreachable_errors(self.deps.settings, found, networking, mcp_hosts(agent))
        if errors:
            await events.append(db, self.deps.notifier, row.id, errors)

    async def prepare_at_once(
        self,
        db: AsyncSession,
        row: Session,
        batch: list[EventRecord],
        config: EnvironmentConfig | None = None,
    ) -> ToolPlan | None:
        """In the transaction that records a response: when its calls are all allowed outright
        (MCP calls, and built-in calls this server runs), record them as started there too, so
        they start right after that commit instead of after another deciding step (what that
        step would decide from the log alone: nothing refused or waiting on the client comes
        first, and no interrupt is queued). ``config``: the environment's sandbox config, if
        this transaction has read it already."""
        uses = [e for e in batch if e["type"] in TOOL_USE_TYPES and not harness_of(e).get("server")]
        if not uses or not all(_runs_at_once(u) for u in uses):
            return None
        if row.status != "running" or await events.has_queued_interrupt(db, row.id):
            return None
        return await self.prepare(db, row, TurnState(tool_uses=uses), config)

    async def _execute_until_interrupt(self, plan: ToolPlan) -> list[EventRecord | BaseException]:
        """Run the calls; a `user.interrupt` arriving meanwhile kills them (their results say so).

        The MCP calls' requests go out first: only then (see `Launch`) are the
        held frames handed to the streams and the log read for an interrupt queued meanwhile,
        work that would otherwise run on this event loop before the requests and delay them."""
        launch = Launch([u["id"] for u in plan.calls if u["type"] == "agent.mcp_tool_use"])
        tasks = [
            asyncio.ensure_future(self._execute(use, plan, launch.signal(use["id"]))) for use in plan.calls
        ]
        running: asyncio.Future[list[EventRecord | BaseException]] = asyncio.gather(
            *tasks, return_exceptions=True
        )
        watching: asyncio.Future[None] | None = None
        try:
            await launch.until_written(running)
            if plan.held is not None:
                plan.held.release()
            interrupt = interrupts.wait_for_interrupt(self.deps, self.claim.session_id, self.announced)
            watching = asyncio.create_task(interrupt)
            either: list[asyncio.Future[Any]] = [running, watching]
            await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
            interrupted = watching.done() and watching.exception() is None
            abandoned = set()
            if interrupted:  # MCP calls run here, not in the sandbox: they are abandoned
                abandoned = {
                    use["id"]
                    for use, task in zip(plan.calls, tasks, strict=True)
                    if use["type"] == "agent.mcp_tool_use" and task.cancel()
                }
            while interrupted and not running.done():  # again until it lands: a call may be starting
                await self.deps.sandbox.cancel(self.claim.sandbox_id)
                await asyncio.wait([running], timeout=CANCEL_RETRY_SECONDS)
            outcomes = await running
            return [
                _abandoned(use)
                if use["id"] in abandoned and isinstance(outcome, asyncio.CancelledError)
                else outcome
                for use, outcome in zip(plan.calls, outcomes, strict=True)
            ]
        finally:
            if not running.done():  # this step itself was cancelled (the worker stops)
                running.cancel()
            if watching is not None:
                watching.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await watching

    async def _execute(
        self, use: EventRecord, plan: ToolPlan, sent: Callable[[], None] | None = None
    ) -> EventRecord:
        """The call's result event; a SandboxError (the engine failed, not the tool) propagates.
        ``sent``: told when an MCP call's request is out (or, failing that, when it ended)."""
        try:
            with measure.tool_call(use["type"], use["name"]) as outcome:
                result = await self._run_tool(use, plan, sent)
                outcome.value = "error" if result.get("is_error") else "ok"
        finally:
            if sent is not None:
                sent()
        return result

    async def _run_tool(
        self, use: EventRecord, plan: ToolPlan, sent: Callable[[], None] | None = None
    ) -> EventRecord:
        if use["type"] == "agent.tool_use" and tools.is_orchestration(plan.agent, use["name"]):
            return await orchestration.execute(self.deps, self.claim, use)
        if use["type"] == "agent.mcp_tool_use":
            outcome = await self.deps.mcp.call(
                self.claim.session_id,
                plan.agent,
                plan.vault_ids,
                use["mcp_server_name"],
                use["name"],
                use.get("input") or {},
                sent,
            )
            content = await spill_large_text(
                self.deps.sandbox, self.claim.sandbox_id, plan.spec, outcome.content
            )
            return mcp_tool_result_event(use["id"], content, is_error=outcome.is_error)
        return result_event(use, await self.deps.sandbox.execute(self.claim.sandbox_id, tool_request(use)))

    async def _progress(self, line: str) -> None:
        log.info("session %s sandbox: %s", self.claim.session_id, line.rstrip())

    async def _sandbox_failed(self, calls: list[EventRecord], error: SandboxError | OSError) -> None:
        """E.g. a package failed to install: the session gets the failing manager's output as a
        `session.error` and returns to idle; the calls get error results so the turn can resume."""
        message = str(error)
        if isinstance(error, ImageBuildError):
            message = f"Building the environment image failed ({error.manager}):\n{error.output[-8000:]}"
        async with self.deps.database.unit_of_work() as db:
            row = await leases.fence(db, self.claim)
            failed = [actions.error_result(u, "The sandbox is unavailable: " + message[:2000]) for u in calls]
            await events.append(db, self.deps.notifier, row.id, failed)
            session_error: ErrorObject = {
                "type": "unknown_error",
                "message": message,
                "retry_status": {"type": "exhausted"},
            }
            await events.append(
                db, self.deps.notifier, row.id, [{"type": "session.error", "error": session_error}]
            )
            transitions.tools_finished(row)
            await transitions.go_idle(db, self.deps.notifier, row, {"type": "retries_exhausted"})
