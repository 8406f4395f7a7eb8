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

from typing import Annotated, Any, Literal, TypeAlias, get_args

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

JsonObject: TypeAlias = dict[str, Any]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- nested values ------------------------------------------------------------------------------


class RetryStatus(_Model):
    type: Literal["retrying", "exhausted", "terminal"]


class ErrorObject(_Model):
    """``session.error``'s ``error``: the SDK's error objects share ``type``, ``message`` and
    ``retry_status``; MCP, credential and repository errors name what failed."""

    type: str
    message: str
    retry_status: RetryStatus
    mcp_server_name: str | None = None
    credential_id: str | None = None
    vault_id: str | None = None
    repository_url: str | None = None


class StopReason(_Model):
    type: Literal["end_turn", "requires_action", "retries_exhausted", "budget_reached", "refusal"]
    event_ids: list[str] | None = None


class StopDetails(_Model):
    type: Literal["refusal"]
    category: Literal["cyber", "bio", "frontier_llm", "reasoning_extraction", "general_harms"] | None = None
    explanation: str | None = None


class SpanModelUsage(_Model):
    input_tokens: int
    output_tokens: int
    cache_creation_input_tokens: int
    cache_read_input_tokens: int
    speed: Literal["standard", "fast"] | None = None


class _Thread(_Model):
    session_thread_id: str
    agent_name: str


# --- user and system events (sent by clients) -------------------------------------------------


class UserMessage(_Model):
    type: Literal["user.message"]
    content: list[JsonObject]


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
    content: list[JsonObject] | None = None
    is_error: bool | None = None
    session_thread_id: str | None = None


class UserToolResult(_Model):
    type: Literal["user.tool_result"]
    tool_use_id: str
    content: list[JsonObject] | None = None
    is_error: bool | None = None
    session_thread_id: str | None = None


class UserDefineOutcome(_Model):
    type: Literal["user.define_outcome"]
    outcome_id: str
    description: str
    rubric: JsonObject
    max_iterations: int | None = None


class SystemMessage(_Model):
    type: Literal["system.message"]
    content: list[JsonObject]


# --- agent events -----------------------------------------------------------------------------


class AgentMessage(_Model):
    type: Literal["agent.message"]
    content: list[JsonObject]


class AgentThinking(_Model):
    type: Literal["agent.thinking"]


class AgentToolUse(_Model):
    type: Literal["agent.tool_use"]
    name: str
    input: JsonObject
    evaluated_permission: Literal["allow", "ask", "deny"] | None = None
    evaluation: JsonObject | None = None
    session_thread_id: str | None = None


class AgentToolResult(_Model):
    type: Literal["agent.tool_result"]
    tool_use_id: str
    content: list[JsonObject] | None = None
    is_error: bool | None = None


class AgentCustomToolUse(_Model):
    type: Literal["agent.custom_tool_use"]
    name: str
    input: JsonObject
    session_thread_id: str | None = None


class AgentMcpToolUse(_Model):
    type: Literal["agent.mcp_tool_use"]
    mcp_server_name: str
    name: str
    input: JsonObject
    evaluated_permission: Literal["allow", "ask", "deny"] | None = None
    evaluation: JsonObject | None = None
    session_thread_id: str | None = None


class AgentMcpToolResult(_Model):
    type: Literal["agent.mcp_tool_result"]
    mcp_tool_use_id: str
    content: list[JsonObject] | None = None
    is_error: bool | None = None


class AgentThreadMessageReceived(_Model):
    type: Literal["agent.thread_message_received"]
    from_session_thread_id: str
    content: list[JsonObject]
    from_agent_name: str | None = None


class AgentThreadMessageSent(_Model):
    type: Literal["agent.thread_message_sent"]
    to_session_thread_id: str
    content: list[JsonObject]
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
    usage: JsonObject
    budget: JsonObject | None = None


class SessionUpdated(_Model):
    type: Literal["session.updated"]
    agent: JsonObject | None = None
    budget: JsonObject | None = None
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
    phases: list[JsonObject]
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
    result: JsonObject


class WorkflowRunError(_Model):
    type: Literal["workflow_run.error"]
    error: JsonObject
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


class Harness(_Model):
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

    content: list[JsonObject] | None = None
    stop_reason: str | None = None
    stop_details: JsonObject | None = None
    summary: str | None = None
    tool_use_id: str | None = None
    request: str | None = None
    server: bool | None = None
    client_run: bool | None = None
    origin: str | None = None


def event_types() -> tuple[str, ...]:
    """Every ``type`` the union knows, client events first."""
    models = [*get_args(get_args(ClientEvent)[0]), *get_args(get_args(ServerEvent)[0])]
    return tuple(get_args(model.model_fields["type"].annotation)[0] for model in models)
