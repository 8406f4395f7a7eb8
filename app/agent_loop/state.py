"""Where a session's turn stands, derived from its log alone (so any worker can resume it)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import cast

from app.agent_loop import grader
from app.agent_loop.context import RESULT_KEYS, THREAD_MESSAGE, TOOL_USE_TYPES
from app.events.types import ErrorObject, EventRecord, harness_of, newest_first

# Calls governed by permission policies: built-in tools and MCP tools (custom tools are the client's).
SERVER_RUN_TYPES = ("agent.tool_use", "agent.mcp_tool_use")


@dataclass
class TurnState:
    """The log read backwards from its end: the latest response and what became of its calls."""

    open_request: EventRecord | None = None
    last_response: EventRecord | None = None
    tool_uses: list[EventRecord] = field(default_factory=list)
    results: dict[str, EventRecord] = field(default_factory=dict)
    confirmations: dict[str, EventRecord] = field(default_factory=dict)
    input_after_response: bool = False
    retries: int = 0
    # Model requests since the latest user message: bounded by `max_tool_rounds`.
    requests_since_input: int = 0

    def unanswered_blocking(self) -> list[str]:
        """Calls waiting on the client: always_ask without a confirmation, custom tools and (on
        self-hosted environments) allowed built-in calls without a result."""
        waiting = []
        for use in self.tool_uses:
            if use["id"] in self.results:
                continue
            if (
                use["type"] == "agent.custom_tool_use"
                or (use.get("evaluated_permission") == "ask" and use["id"] not in self.confirmations)
                or (harness_of(use).get("client_run") and self._allowed(use))
            ):
                waiting.append(use["id"])
        return waiting

    def runnable(self) -> list[EventRecord]:
        """Built-in calls allowed (by policy or confirmation) that have no result yet and that
        this server runs (not the client of a self-hosted environment)."""
        return [
            u
            for u in self.tool_uses
            if u["id"] not in self.results and self._allowed(u) and not harness_of(u).get("client_run")
        ]

    def refused(self) -> list[EventRecord]:
        """Built-in calls that will not run (denied by the client or not enabled) without a result."""
        return [u for u in self.tool_uses if u["id"] not in self.results and self._refused(u)]

    def _allowed(self, use: EventRecord) -> bool:
        if use["type"] not in SERVER_RUN_TYPES:
            return False
        permission = use.get("evaluated_permission")
        if permission == "ask":
            return self._confirmed(use) == "allow"
        return permission == "allow"

    def _refused(self, use: EventRecord) -> bool:
        if use["type"] not in SERVER_RUN_TYPES:
            return False
        permission = use.get("evaluated_permission")
        if permission == "ask":
            return self._confirmed(use) == "deny"
        return permission == "deny"

    def _confirmed(self, use: EventRecord) -> object:
        """The client's answer to a call held for confirmation (None: not answered yet)."""
        confirmation = self.confirmations.get(use["id"])
        return None if confirmation is None else confirmation.get("result")

    @property
    def response_wants_tools(self) -> bool:
        return bool(self.tool_uses)


def _response_and_calls(events: list[EventRecord], state: TurnState) -> None:
    ended: set[str] = set()
    for event in newest_first(events):
        kind = event["type"]
        if kind == "span.model_request_end":
            ended.add(str(event.get("model_request_start_id")))
            if state.last_response is None and harness_of(event).get("content") is not None:
                state.last_response = event
        elif kind == "span.model_request_start" and event["id"] not in ended and state.last_response is None:
            state.open_request = state.open_request or event
    if state.last_response is not None:
        request = state.last_response.get("model_request_start_id")
        # Server tools (the API's web_search) ran inside the request: never run or waited on here.
        state.tool_uses = [
            e
            for e in events
            if e["type"] in TOOL_USE_TYPES
            and harness_of(e).get("request") == request
            and not harness_of(e).get("server")
        ]


def analyse(events: list[EventRecord]) -> TurnState:
    state = TurnState()
    _response_and_calls(events, state)
    after = state.last_response["id"] if state.last_response else None
    # Messages from other threads are appended as they arrive, even during a model request: one
    # that arrived after the latest response's request started has not been seen by the model.
    started = state.last_response.get("model_request_start_id") if state.last_response else None
    seen_start = started is None
    seen_response = after is None
    for event in events:
        kind = event["type"]
        seen_start = seen_start or event["id"] == started
        if kind in (THREAD_MESSAGE, grader.DEFINE):  # may arrive while a request runs
            state.requests_since_input = 0
            state.input_after_response = state.input_after_response or seen_start
        if kind == "user.message" or grader.is_agent_input(event):
            state.requests_since_input = 0
        elif kind == "span.model_request_start":
            state.requests_since_input += 1
        if kind in RESULT_KEYS:
            state.results[str(event.get(RESULT_KEYS[kind]))] = event
        elif kind == "user.tool_confirmation":
            state.confirmations[str(event.get("tool_use_id"))] = event
        if not seen_response:
            seen_response = event["id"] == after
            continue
        if kind == "user.message" or grader.is_agent_input(event):
            state.input_after_response = True
            state.retries = 0
        elif retrying(event):
            state.retries += 1
    return state


def retrying(event: EventRecord) -> bool:
    """A ``session.error`` the loop retries after (a failed model request)."""
    if event["type"] != "session.error" or "error" not in event:
        return False
    error = cast(ErrorObject, event["error"])  # a session error's, not a workflow run's
    return error["retry_status"]["type"] == "retrying"
