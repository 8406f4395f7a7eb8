"""The event union (app/events/types.py) has the SDK 2.14 shape: every type, every field."""

from __future__ import annotations

import typing
from typing import Any, cast

import pydantic
import pytest
from anthropic.types.beta.sessions.beta_managed_agents_session_event_type import (
    BetaManagedAgentsSessionEventType,
)

from app.events import service
from app.events.types import EVENT, ClientEvent, EventRecord, ServerEvent, event_types
from tests.support.wire_check import MODELS as SDK_MODELS

OURS = {
    typing.get_args(model.model_fields["type"].annotation)[0]: model
    for union in (ClientEvent, ServerEvent)
    for model in typing.get_args(typing.get_args(union)[0])
}


def test_the_union_has_every_type_of_sdk_2_14() -> None:
    persisted = set(typing.get_args(BetaManagedAgentsSessionEventType))
    assert len(persisted) == 41
    assert set(event_types()) == persisted | {"session.deleted"} == set(SDK_MODELS)


@pytest.mark.parametrize("kind", sorted(SDK_MODELS))
def test_each_type_has_the_sdk_fields(kind: str) -> None:
    sdk = SDK_MODELS[kind].model_fields
    ours = OURS[kind].model_fields
    assert set(ours) == set(sdk) - {"id", "processed_at"}
    required = {name for name, field in sdk.items() if field.is_required()} - {"id", "processed_at"}
    assert {name for name, field in ours.items() if field.is_required()} == required


def test_a_misbuilt_event_is_refused_where_it_is_written() -> None:
    service.checked({"type": "session.status_idle", "stop_reason": {"type": "end_turn"}})
    misbuilt: list[dict[str, Any]] = [  # as code that ignored its types would build them
        {"type": "session.status_idle", "stop_reason": {"type": "end_turn"}, "extra": 1},
        {"type": "session.status_idle", "stop_reason": {"type": "done"}},
        {"type": "span.model_request_start", "_unknown_bookkeeping": True},
        {"type": "span.model_request_start", "harness": {"unknown_bookkeeping": True}},
        {"type": "span.model_request_end", "harness": {"content": "not a list of blocks"}},
    ]
    for event in misbuilt:
        with pytest.raises(pydantic.ValidationError):
            service.checked(cast(EventRecord, event))
    with pytest.raises(pydantic.ValidationError):
        EVENT.validate_python({"type": "agent.dance"})


def test_the_record_type_names_every_field_of_the_union() -> None:
    # EventRecord is the union flattened: a field added to one kind's model belongs in it too.
    fields = {name for model in OURS.values() for name in model.model_fields}
    keys = EventRecord.__required_keys__ | EventRecord.__optional_keys__
    assert fields <= keys
    assert keys - fields == {"id", "processed_at", "harness"}
