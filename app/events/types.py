"""Every event of a session as a type: one discriminated union over the 42 kinds of SDK 2.14
(the 41 persisted types of ``BetaManagedAgentsSessionEventType`` and ``session.deleted``), server
and client events alike, including those no part of this server emits yet (threads, outcomes,
workflows), so that whoever builds them starts from the wire shape.

Models hold the wire fields an event is stored with: not ``id``, ``type`` is the discriminator,
and ``processed_at`` is the log's. Unknown fields are refused (``extra="forbid"``), so a misspelt or
invented field fails where the event is written, not in a client. Nested values whose shape the
SDK defines as wide unions (content blocks, evaluations, rubrics) are JSON objects here; the
run-wide check in the test-suite holds every emitted event to the SDK's own models.

The harness's bookkeeping rides beside the event in ``Harness``, never on the wire.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Annotated, Literal, NotRequired, Required, TypeAlias, cast, get_args

from pydantic import BaseModel, ConfigDict, Field, JsonValue, TypeAdapter, with_config
from typing_extensions import TypedDict

from app.db.session_json import Budget, PublicUsage
from app.shared.agent_config import SessionAgent

# Content blocks live below the packages that pass them on; re-exported as part of the events.
from app.shared.content import CacheControl as CacheControl
from app.shared.content import ContentBlock as ContentBlock


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- nested values ------------------------------------------------------------------------------


@with_config(ConfigDict(extra="forbid"))
class RetryStatus(TypedDict):
    type: Literal["retrying", "exhausted", "terminal"]


@with_config(ConfigDict(extra="forbid"))
class ErrorObject(TypedDict):
    """``session.error``'s ``error``: the SDK's error objects share ``type``, ``message`` and
    ``retry_status``; MCP, credential and repository errors name what failed."""

    type: str
    message: str
    retry_status: RetryStatus
    mcp_server_name: NotRequired[str | None]
    credential_id: NotRequired[str | None]
    vault_id: NotRequired[str | None]
    repository_url: NotRequired[str | None]


@with_config(ConfigDict(extra="forbid"))
class StopReason(TypedDict):
    type: Literal["end_turn", "requires_action", "retries_exhausted", "budget_reached", "refusal"]
    event_ids: NotRequired[list[str] | None]


@with_config(ConfigDict(extra="forbid"))
class StopDetails(TypedDict):
    type: Literal["refusal"]
    category: NotRequired[
        Literal["cyber", "bio", "frontier_llm", "reasoning_extraction", "general_harms"] | None
    ]
    explanation: NotRequired[str | None]


@with_config(ConfigDict(extra="forbid"))
class SpanModelUsage(TypedDict):
    input_tokens: int
    output_tokens: int
    cache_creation_input_tokens: int
    cache_read_input_tokens: int
    speed: NotRequired[Literal["standard", "fast"] | None]


@with_config(ConfigDict(extra="forbid"))
class WorkflowRunErrorObject(TypedDict):
    """``workflow_run.error``'s ``error`` (and an ``error`` result's): what kept the run going."""

    type: str
    message: str


@with_config(ConfigDict(extra="forbid"))
class WorkflowRunResult(TypedDict):
    """How a workflow run ended: ``completed``, ``stopped``, or ``error`` with its ``error``."""

    type: Literal["completed", "stopped", "error"]
    error: NotRequired[WorkflowRunErrorObject]


@with_config(ConfigDict(extra="forbid"))
class WorkflowRunPhase(TypedDict):
    id: str
    name: str
    description: NotRequired[str | None]


class Rubric(TypedDict):
    """What ``user.define_outcome`` is graded against: a text rubric or a file's."""

    type: Literal["text", "file"]
    content: NotRequired[str]
    file_id: NotRequired[str]


class Judgement(TypedDict):
    """The permission an ``auto`` policy's judge gave a call (see ``agent_loop.judge``)."""

    type: Literal["allow", "ask", "deny"]
    reason_code: NotRequired[str]


class PermissionEvaluation(TypedDict):
    """A tool use's ``evaluation``: the policy that decided it, and under ``auto`` the judgement."""

    type: str
    evaluated_permission: NotRequired[Judgement]


class _Thread(_Model):
    session_thread_id: str
    agent_name: str


# --- user and system events (sent by clients) -------------------------------------------------


class UserMessage(_Model):
    type: Literal["user.message"]
    content: list[ContentBlock]


class UserInterrupt(_Model):
    type: Literal["user.interrupt"]
    session_thread_id: str | None = None


class UserToolConfirmation(_Model):
    type: Literal["user.tool_confirmation"]
    tool_use_id: str
    result: Literal["allow", "deny"]
    deny_message: str | None = None
    session_thread_id: str | None = None


class UserCustomToolResult(_Model):
    type: Literal["user.custom_tool_result"]
    custom_tool_use_id: str
    content: list[ContentBlock] | None = None
    is_error: bool | None = None
    session_thread_id: str | None = None


class UserToolResult(_Model):
    type: Literal["user.tool_result"]
    tool_use_id: str
    content: list[ContentBlock] | None = None
    is_error: bool | None = None
    session_thread_id: str | None = None


class UserDefineOutcome(_Model):
    type: Literal["user.define_outcome"]
    outcome_id: str
    description: str
    rubric: Rubric
    max_iterations: int | None = None


class SystemMessage(_Model):
    type: Literal["system.message"]
    content: list[ContentBlock]


# --- agent events -----------------------------------------------------------------------------


class AgentMessage(_Model):
    type: Literal["agent.message"]
    content: list[ContentBlock]


class AgentThinking(_Model):
    type: Literal["agent.thinking"]


class AgentToolUse(_Model):
    type: Literal["agent.tool_use"]
    name: str
    input: dict[str, JsonValue]  # a tool\'s input, chosen by the model
    evaluated_permission: Literal["allow", "ask", "deny"] | None = None
    evaluation: PermissionEvaluation | None = None
    session_thread_id: str | None = None


class AgentToolResult(_Model):
    type: Literal["agent.tool_result"]
    tool_use_id: str
    content: list[ContentBlock] | None = None
    is_error: bool | None = None


class AgentCustomToolUse(_Model):
    type: Literal["agent.custom_tool_use"]
    name: str
    input: dict[str, JsonValue]  # a tool\'s input, chosen by the model
    session_thread_id: str | None = None


class AgentMcpToolUse(_Model):
    type: Literal["agent.mcp_tool_use"]
    mcp_server_name: str
    name: str
    input: dict[str, JsonValue]  # a tool\'s input, chosen by the model
    evaluated_permission: Literal["allow", "ask", "deny"] | None = None
    evaluation: PermissionEvaluation | None = None
    session_thread_id: str | None = None


class AgentMcpToolResult(_Model):
    type: Literal["agent.mcp_tool_result"]
    mcp_tool_use_id: str
    content: list[ContentBlock] | None = None
    is_error: bool | None = None


class AgentThreadMessageReceived(_Model):
    type: Literal["agent.thread_message_received"]
    from_session_thread_id: str
    content: list[ContentBlock]
    from_agent_name: str | None = None


class AgentThreadMessageSent(_Model):
    type: Literal["agent.thread_message_sent"]
    to_session_thread_id: str
    content: list[ContentBlock]
    to_agent_name: str | None = None


class AgentThreadContextCompacted(_Model):
    type: Literal["agent.thread_context_compacted"]


# --- session status -----------------------------------------------------------------------------


class SessionStatusRunning(_Model):
    type: Literal["session.status_running"]


class SessionStatusIdle(_Model):
    type: Literal["session.status_idle"]
    stop_reason: StopReason
    stop_details: StopDetails | None = None


class SessionStatusRescheduled(_Model):
    type: Literal["session.status_rescheduled"]


class SessionStatusTerminated(_Model):
    type: Literal["session.status_terminated"]


class SessionError(_Model):
    type: Literal["session.error"]
    error: ErrorObject


class SessionUsage(_Model):
    type: Literal["session.usage"]
    usage: PublicUsage
    budget: Budget | None = None


class SessionUpdated(_Model):
    type: Literal["session.updated"]
    agent: SessionAgent | None = None
    budget: Budget | None = None
    metadata: dict[str, str] | None = None
    title: str | None = None


class SessionDeleted(_Model):
    type: Literal["session.deleted"]


# --- threads ------------------------------------------------------------------------------------


class SessionThreadCreated(_Thread):
    type: Literal["session.thread_created"]
    workflow_run_id: str | None = None


class SessionThreadStatusRunning(_Thread):
    type: Literal["session.thread_status_running"]


class SessionThreadStatusIdle(_Thread):
    type: Literal["session.thread_status_idle"]
    stop_reason: StopReason
    stop_details: StopDetails | None = None


class SessionThreadStatusRescheduled(_Thread):
    type: Literal["session.thread_status_rescheduled"]


class SessionThreadStatusTerminated(_Thread):
    type: Literal["session.thread_status_terminated"]


# --- spans --------------------------------------------------------------------------------------


class SpanModelRequestStart(_Model):
    type: Literal["span.model_request_start"]


class SpanModelRequestEnd(_Model):
    type: Literal["span.model_request_end"]
    model_request_start_id: str
    model_usage: SpanModelUsage
    is_error: bool | None = None


class SpanOutcomeEvaluationStart(_Model):
    type: Literal["span.outcome_evaluation_start"]
    outcome_id: str
    iteration: int


class SpanOutcomeEvaluationOngoing(_Model):
    type: Literal["span.outcome_evaluation_ongoing"]
    outcome_id: str
    iteration: int


class SpanOutcomeEvaluationEnd(_Model):
    type: Literal["span.outcome_evaluation_end"]
    outcome_evaluation_start_id: str
    outcome_id: str
    iteration: int
    result: str
    explanation: str
    usage: SpanModelUsage


# --- workflow runs ------------------------------------------------------------------------------


class WorkflowRunCreated(_Model):
    type: Literal["workflow_run.created"]
    workflow_run_id: str
    name: str
    phases: list[WorkflowRunPhase]
    description: str | None = None


class WorkflowRunStatusRunning(_Model):
    type: Literal["workflow_run.status_running"]
    workflow_run_id: str


class WorkflowRunStatusIdle(_Model):
    type: Literal["workflow_run.status_idle"]
    workflow_run_id: str


class WorkflowRunStatusEnded(_Model):
    type: Literal["workflow_run.status_ended"]
    workflow_run_id: str
    result: WorkflowRunResult


class WorkflowRunError(_Model):
    type: Literal["workflow_run.error"]
    error: WorkflowRunErrorObject
    workflow_run_id: str | None = None


class WorkflowRunPhaseStarted(_Model):
    type: Literal["workflow_run.phase_started"]
    workflow_run_id: str
    workflow_run_phase_id: str


class WorkflowRunPhaseEnded(_Model):
    type: Literal["workflow_run.phase_ended"]
    workflow_run_id: str
    workflow_run_phase_id: str
    phase_started_id: str


ClientEvent: TypeAlias = Annotated[
    UserMessage
    | UserInterrupt
    | UserToolConfirmation
    | UserCustomToolResult
    | UserToolResult
    | UserDefineOutcome
    | SystemMessage,
    Field(discriminator="type"),
]

ServerEvent: TypeAlias = Annotated[
    AgentMessage
    | AgentThinking
    | AgentToolUse
    | AgentToolResult
    | AgentCustomToolUse
    | AgentMcpToolUse
    | AgentMcpToolResult
    | AgentThreadMessageReceived
    | AgentThreadMessageSent
    | AgentThreadContextCompacted
    | SessionStatusRunning
    | SessionStatusIdle
    | SessionStatusRescheduled
    | SessionStatusTerminated
    | SessionError
    | SessionUsage
    | SessionUpdated
    | SessionDeleted
    | SessionThreadCreated
    | SessionThreadStatusRunning
    | SessionThreadStatusIdle
    | SessionThreadStatusRescheduled
    | SessionThreadStatusTerminated
    | SpanModelRequestStart
    | SpanModelRequestEnd
    | SpanOutcomeEvaluationStart
    | SpanOutcomeEvaluationOngoing
    | SpanOutcomeEvaluationEnd
    | WorkflowRunCreated
    | WorkflowRunStatusRunning
    | WorkflowRunStatusIdle
    | WorkflowRunStatusEnded
    | WorkflowRunError
    | WorkflowRunPhaseStarted
    | WorkflowRunPhaseEnded,
    Field(discriminator="type"),
]

Event: TypeAlias = Annotated[ClientEvent | ServerEvent, Field(discriminator="type")]

EVENT: TypeAdapter[Event] = TypeAdapter(Event)


@with_config(ConfigDict(extra="forbid"))
class Harness(TypedDict, total=False):
    """What the agent loop records beside an event for itself (never sent to clients):

    * ``content``, ``stop_reason``, ``stop_details`` on ``span.model_request_end``: the raw
      assistant turn (thinking signatures included) and how it ended;
    * ``summary`` on ``agent.thread_context_compacted``: the text that replaces the history;
    * ``tool_use_id`` and ``request`` on tool uses: the model's id of the call and the
      ``span.model_request_start`` it came from; ``server`` for a server tool (web search) the
      Messages API ran itself; ``client_run`` for a built-in tool a self-hosted client runs;
    * ``origin`` on a blocking tool use a child thread cross-posted to its session's log: the id
      of the thread's own event (answers sent to the session are routed to it).
    """

    content: list[ContentBlock]
    stop_reason: str
    stop_details: StopDetails
    summary: str
    tool_use_id: str
    request: str
    server: bool
    client_run: bool
    origin: str


HARNESS: TypeAdapter[Harness] = TypeAdapter(Harness)


class EventRecord(TypedDict, total=False):
    """An event of a session's log as the server passes it around: the wire fields of its
    ``type`` (the union above holds each kind to its own; this is every kind's, flattened, so
    code that reads the log by ``type`` needs no cast), its ``id`` and ``processed_at``, and the
    loop's bookkeeping in ``harness`` (never on the wire: ``events.service.to_wire``).

    An event being built has no ``id`` yet (``events.service.append`` gives one) unless the
    caller announced it (previews, blocking calls)."""

    id: str
    type: Required[str]
    processed_at: str | None
    harness: Harness
    # messages and results
    content: list[ContentBlock]
    is_error: bool | None
    tool_use_id: str
    custom_tool_use_id: str
    mcp_tool_use_id: str
    # tool uses
    name: str
    input: dict[str, JsonValue]  # a tool\'s input, chosen by the model
    mcp_server_name: str
    evaluated_permission: Literal["allow", "ask", "deny"] | None
    evaluation: PermissionEvaluation | None
    # confirmations (``result`` is also an outcome evaluation's verdict and a workflow's end)
    result: str | WorkflowRunResult
    deny_message: str | None
    # threads
    session_thread_id: str | None
    agent_name: str
    from_session_thread_id: str
    from_agent_name: str | None
    to_session_thread_id: str
    to_agent_name: str | None
    # status and errors
    stop_reason: StopReason
    stop_details: StopDetails | None
    error: ErrorObject | WorkflowRunErrorObject
    # spans and outcomes
    model_request_start_id: str
    model_usage: SpanModelUsage
    outcome_id: str
    description: str | None
    rubric: Rubric
    max_iterations: int | None
    iteration: int
    outcome_evaluation_start_id: str
    explanation: str
    usage: SpanModelUsage | PublicUsage  # an outcome evaluation's; session.usage's totals
    # session updates
    agent: SessionAgent | None
    budget: Budget | None
    metadata: dict[str, str] | None
    title: str | None
    # workflow runs
    workflow_run_id: str | None
    workflow_run_phase_id: str
    phase_started_id: str
    phases: list[WorkflowRunPhase]


def event_types() -> tuple[str, ...]:
    """Every ``type`` the union knows, client events first."""
    models = [*get_args(get_args(ClientEvent)[0]), *get_args(get_args(ServerEvent)[0])]
    return tuple(get_args(model.model_fields["type"].annotation)[0] for model in models)


def harness_of(event: EventRecord) -> Harness:
    """The loop's bookkeeping on an event (empty when it has none)."""
    return event.get("harness") or {}


def newest_first(events: Sequence[EventRecord]) -> Iterator[EventRecord]:
    """``reversed(events)``, typed: mypy gives ``reversed`` of a TypedDict that holds ``Any``
    values the type ``Any``, which would switch off the checks of every loop over it."""
    return cast("Iterator[EventRecord]", reversed(events))
