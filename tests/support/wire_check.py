"""Every event the server emits, checked against the SDK 2.14 models, for the whole test run.

A pytest plugin: it wraps the two places where events leave the server (``events.service.to_wire``,
through which every logged event is listed, streamed and echoed, and ``Notifier.publish_ephemeral``
for the stream-only ``event_start``/``event_delta`` previews) and validates each event against the
SDK model its ``type`` names. A field the model does not declare, a private ``_`` key, an unknown
type or a value the model rejects fails the test during which the event was emitted. Servers run
in the test process (``ServerThread``) are covered; ``mas`` subprocesses are not.
"""

from __future__ import annotations

import threading
import typing
from collections import Counter
from collections.abc import Iterator, Mapping
from typing import Any

import pydantic
import pytest
from anthropic.types.beta.beta_managed_agents_delta_event import BetaManagedAgentsDeltaEvent
from anthropic.types.beta.beta_managed_agents_start_event import BetaManagedAgentsStartEvent
from anthropic.types.beta.sessions.beta_managed_agents_session_event import BetaManagedAgentsSessionEvent

from app.events import service as event_service
from app.events.notifier import Notifier, PreviewFrame
from app.events.types import EventRecord

Model = type[pydantic.BaseModel]


def _models_by_type() -> dict[str, Model]:
    union = typing.get_args(BetaManagedAgentsSessionEvent)[0]
    models: dict[str, Model] = {}
    for model in typing.get_args(union):
        (literal,) = typing.get_args(model.model_fields["type"].annotation)
        models[literal] = model
    return models


MODELS = _models_by_type()
EPHEMERAL: dict[str, Model] = {
    "event_start": BetaManagedAgentsStartEvent,
    "event_delta": BetaManagedAgentsDeltaEvent,
}


class WireCheck:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.failures: list[str] = []
        self.checked: Counter[str] = Counter()

    def check(self, event: Mapping[str, Any], models: dict[str, Model]) -> None:
        kind = str(event.get("type"))
        problem = _problem(event, models.get(kind))
        with self.lock:
            self.checked[kind] += 1
            if problem is not None:
                self.failures.append(f"{kind} {event.get('id', '')}: {problem}\n    {event!r}"[:2000])

    def take_failures(self) -> list[str]:
        with self.lock:
            failures, self.failures = self.failures, []
        return failures


def _problem(event: Mapping[str, Any], model: Model | None) -> str | None:
    if model is None:
        return "not an event type of SDK 2.14"
    private = [key for key in event if key.startswith("_") or key == "harness"]
    if private:
        return f"private keys leave the server: {private}"
    undeclared = _undeclared(event, model)
    if undeclared:
        return f"fields the SDK model does not declare: {undeclared}"
    try:
        model.model_validate(event)
    except pydantic.ValidationError as exc:
        return str(exc)
    return None


def _undeclared(event: Mapping[str, Any], model: Model) -> list[str]:
    declared = {field.alias or name for name, field in model.model_fields.items()}
    return sorted(key for key in event if key not in declared)


CHECK = WireCheck()


def pytest_configure(config: pytest.Config) -> None:
    to_wire = event_service.to_wire
    publish_ephemeral = Notifier.publish_ephemeral

    def checked_to_wire(row: Any) -> EventRecord:
        wire = to_wire(row)
        CHECK.check(wire, MODELS)
        return wire

    def checked_publish(self: Notifier, session_id: str, wire: PreviewFrame, *, forward: bool = True) -> None:
        CHECK.check(wire, EPHEMERAL)
        publish_ephemeral(self, session_id, wire, forward=forward)

    event_service.to_wire = checked_to_wire
    Notifier.publish_ephemeral = checked_publish  # type: ignore[method-assign]


@pytest.fixture(autouse=True)
def _events_match_the_sdk() -> Iterator[None]:
    CHECK.take_failures()  # an earlier test's stragglers were reported by that test
    yield
    failures = CHECK.take_failures()
    if failures:
        pytest.fail(
            "events that do not match the SDK 2.14 models:\n" + "\n".join(failures[:10]), pytrace=False
        )


def pytest_sessionfinish(session: pytest.Session) -> None:
    """An xdist worker hands its counts to the controller, which prints the run's total."""
    output = getattr(session.config, "workeroutput", None)
    if output is not None:
        output["wire_check"] = dict(CHECK.checked)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    CHECK.checked.update(getattr(node, "workeroutput", {}).get("wire_check", {}))


def pytest_terminal_summary(terminalreporter: Any) -> None:
    total = sum(CHECK.checked.values())
    if total:
        kinds = len(CHECK.checked)
        terminalreporter.write_line(
            f"wire check: {total} emitted events of {kinds} types validated against SDK 2.14"
        )
