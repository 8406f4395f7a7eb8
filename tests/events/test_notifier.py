"""The notifier's in-memory bookkeeping stays bounded however many sessions a server sees, and a
session's publications held back by a step come out in order when it lets them go."""

from __future__ import annotations

import pytest

from app.events import notifier as notifier_module
from app.events.notifier import Item, LogEvent, Notifier, Subscription


def test_per_session_bookkeeping_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(notifier_module, "TRACKED_SESSIONS", 3)
    notifier = Notifier()
    for n in range(10):
        session_id = f"sesn_{n}"
        notifier.publish(session_id, [LogEvent(1, {"id": "sevt_1", "type": "session.status_idle"})])
        notifier.mark_delivered(session_id, 1)
    assert len(notifier.delivered) == 3 and "sesn_9" in notifier.delivered
    assert notifier.last_published("sesn_0") == 0 and notifier.last_published("sesn_9") == 1


def _event(seq: int) -> LogEvent:
    return LogEvent(seq, {"id": f"sevt_{seq}", "type": "agent.message"})


def _queued(sub: Subscription) -> list[Item]:
    out = []
    while not sub.queue.empty():
        out.append(sub.queue.get_nowait())
    return out


def _seqs(items: list[Item]) -> list[int]:
    return [item.seq if isinstance(item, LogEvent) else -1 for item in items]


async def test_held_publications_are_handed_out_in_order_when_released() -> None:
    notifier = Notifier()
    sub = notifier.subscribe("sesn_a")
    other = notifier.subscribe("sesn_b")
    held = notifier.hold("sesn_a")
    notifier.publish("sesn_a", [_event(1), _event(2)])
    notifier.publish("sesn_a", [_event(2), _event(3)])  # a re-read overlapping the first
    notifier.publish("sesn_b", [_event(1)])  # another session is not held

    assert _queued(sub) == [] and _seqs(_queued(other)) == [1]
    held.release()
    held.release()  # idempotent
    assert _seqs(_queued(sub)) == [1, 2, 3]
    notifier.publish("sesn_a", [_event(4)])  # no longer held
    assert _seqs(_queued(sub)) == [4]


async def test_a_second_hold_holds_nothing_and_a_deleted_session_drops_its_hold() -> None:
    notifier = Notifier()
    sub = notifier.subscribe("sesn_a")
    first = notifier.hold("sesn_a")
    second = notifier.hold("sesn_a")
    notifier.publish("sesn_a", [_event(1)])
    second.release()  # the first hold still holds
    assert _queued(sub) == []
    notifier.publish_deleted("sesn_a")
    first.release()
    assert [type(item).__name__ for item in _queued(sub)] == ["Deleted"]
    after = notifier.hold("sesn_a")  # a hold taken after the old one was dropped is its own
    first.release()
    notifier.publish("sesn_a", [_event(2)])
    assert _queued(sub) == []
    after.release()
    assert _seqs(_queued(sub)) == [2]
