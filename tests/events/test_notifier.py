"""The notifier's in-memory bookkeeping stays bounded however many sessions a server sees."""

from __future__ import annotations

import pytest

from app.events import notifier as notifier_module
from app.events.notifier import LogEvent, Notifier


def test_per_session_bookkeeping_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(notifier_module, "TRACKED_SESSIONS", 3)
    notifier = Notifier()
    for n in range(10):
        session_id = f"sesn_{n}"
        notifier.publish(session_id, [LogEvent(1, {"id": "sevt_1", "type": "session.status_idle"})])
        notifier.mark_delivered(session_id, 1)
    assert len(notifier.delivered) == 3 and "sesn_9" in notifier.delivered
    assert notifier.last_published("sesn_0") == 0 and notifier.last_published("sesn_9") == 1
