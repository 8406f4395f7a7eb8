"""The run-wide event check (tests/support/wire_check.py) catches what it is there to catch."""

from __future__ import annotations

from typing import Any

from tests.support.wire_check import EPHEMERAL, MODELS, _problem

IDLE: dict[str, Any] = {
    "id": "sevt_1",
    "type": "session.status_idle",
    "stop_reason": {"type": "end_turn"},
    "processed_at": "2026-05-01T12:00:00.000Z",
}


def test_it_knows_all_41_persisted_event_types() -> None:
    assert len(MODELS) == 42  # the 41 of BetaManagedAgentsSessionEventType, plus session.deleted
    assert {"workflow_run.phase_ended", "agent.thread_message_sent", "session.deleted"} <= set(MODELS)


def test_a_valid_event_passes() -> None:
    assert _problem(IDLE, MODELS["session.status_idle"]) is None


def test_private_undeclared_invalid_and_unknown_events_fail() -> None:
    idle = MODELS["session.status_idle"]
    assert "private keys" in str(_problem({**IDLE, "_content": []}, idle))
    assert "private keys" in str(_problem({**IDLE, "harness": {"content": []}}, idle))
    assert "does not declare: ['extra']" in str(_problem({**IDLE, "extra": 1}, idle))
    assert "stop_reason" in str(_problem({**IDLE, "stop_reason": {"type": "bogus"}}, idle))
    assert "not an event type" in str(_problem({"type": "agent.dance"}, None))
    assert _problem({"type": "event_start", "event": {"type": "agent.message"}}, EPHEMERAL["event_start"])
