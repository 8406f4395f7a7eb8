"""The one shape of a background loop (`app.shared.loops.LoopService`): rounds run at start, when
woken and when a round asks for more; a failed round is logged and the next one runs; a disabled
service never runs; `stop` ends it; the notifier's topics wake it, and it polls at the short
interval only while the notifier cannot hear every process."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from app.db.peers import SqlitePeers
from app.events.notifier import Notifier, RemoteChannel
from app.shared.loops import AT_ONCE, LoopService


class Recorder(LoopService):
    """Records its rounds; each round takes the next scripted outcome (a return value or an error)."""

    def __init__(self, interval_seconds: float | None = None, *, enabled: bool = True) -> None:
        super().__init__("recorder", interval_seconds, enabled=enabled)
        self.script: list[float | BaseException | None] = []
        self.ran = asyncio.Queue[int]()
        self.hold: asyncio.Event | None = None  # a round waits for it (to wake the service mid-round)

    async def run_once(self) -> float | None:
        self.ran.put_nowait(self.rounds)
        if self.hold is not None:
            await self.hold.wait()
        outcome = self.script.pop(0) if self.script else None
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome


async def rounds_so_far(service: Recorder) -> list[int]:
    """The rounds that have started, once the service sleeps again."""
    for _ in range(20):  # let the loop reach its wait
        await asyncio.sleep(0)
    seen = []
    while not service.ran.empty():
        seen.append(service.ran.get_nowait())
    return seen


async def test_a_round_runs_at_start_and_then_only_when_woken() -> None:
    service = Recorder(interval_seconds=None)  # no poll at all: only wake-ups run it
    await service.start()
    try:
        assert await service.ran.get() == 1
        assert await rounds_so_far(service) == []
        service.wake()
        assert await service.ran.get() == 2
        assert await rounds_so_far(service) == [] and service.problem() is None
    finally:
        await service.stop()
    assert service.problem() == "stopped" and not service.running


async def test_a_wake_up_during_a_round_is_not_lost() -> None:
    service = Recorder()
    service.hold = asyncio.Event()
    await service.start()
    try:
        assert await service.ran.get() == 1
        service.wake()  # the round in progress may have read the database before this news
        service.hold.set()
        assert await service.ran.get() == 2
        assert await rounds_so_far(service) == []
    finally:
        await service.stop()


async def test_a_round_that_asks_for_more_runs_again_at_once() -> None:
    service = Recorder()
    service.script = [AT_ONCE, AT_ONCE, None]  # two full batches, then the rest
    await service.start()
    try:
        assert [await service.ran.get() for _ in range(3)] == [1, 2, 3]
        assert await rounds_so_far(service) == []
    finally:
        await service.stop()


async def test_a_round_that_names_a_due_time_runs_again_then_without_a_wake_up() -> None:
    service = Recorder(interval_seconds=None)
    service.script = [0.01]  # a retry falls due in 10 ms
    await service.start()
    try:
        assert [await service.ran.get() for _ in range(2)] == [1, 2]
    finally:
        await service.stop()


async def test_a_failed_round_is_logged_and_the_service_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    service = Recorder()
    service.script = [RuntimeError("the database restarts"), RuntimeError("still"), None]
    await service.start()
    try:
        with caplog.at_level(logging.ERROR, logger="app.shared.loops"):
            assert await service.ran.get() == 1
            service.wake()
            assert await service.ran.get() == 2
            await rounds_so_far(service)
            assert service.failures == 2 and service.problem() is None
            service.wake()
            assert await service.ran.get() == 3
            await rounds_so_far(service)
        assert service.failures == 0
        failed = [r for r in caplog.records if "a round failed" in r.getMessage()]
        assert len(failed) == 2 and failed[0].exc_info is not None
    finally:
        await service.stop()


async def test_a_disabled_service_never_runs() -> None:
    service = Recorder(enabled=False)
    await service.start()
    service.wake()
    assert await rounds_so_far(service) == [] and not service.running
    assert service.problem() == "not started"
    await service.stop()


class Crash(BaseException):
    """What no round catches (an `Exception` is logged and the loop goes on): the loop ends."""


async def test_readiness_names_a_service_not_started_stopped_or_whose_loop_ended() -> None:
    service = Recorder()
    assert service.problem() == "not started"
    service.script = [Crash("a bug")]
    await service.start()
    try:
        assert await service.ran.get() == 1
        await rounds_so_far(service)
        assert not service.running
        assert service.problem() == "its loop ended (Crash('a bug'))"
    finally:
        await service.stop()
    assert service.problem() == "stopped"
    await service.start()  # started again: working again
    try:
        await service.ran.get()
        assert service.problem() is None
    finally:
        await service.stop()


async def test_a_service_started_by_its_first_use_is_fine_until_then() -> None:
    service = Recorder()
    service.on_demand = True
    assert service.problem() is None
    await service.stop()
    assert service.problem() == "stopped"


async def test_a_service_that_waits_first_runs_no_round_at_start() -> None:
    service = Recorder(interval_seconds=None)
    service.wait_first = True
    await service.start()
    try:
        assert await rounds_so_far(service) == []
        service.wake()
        assert await service.ran.get() == 1
    finally:
        await service.stop()


async def test_stop_cancels_the_round_in_progress() -> None:
    service = Recorder()
    service.hold = asyncio.Event()  # never set: the round would wait forever
    await service.start()
    assert await service.ran.get() == 1
    await service.stop()
    assert not service.running and service.rounds == 1


class Remote(RemoteChannel):
    def __init__(self) -> None:
        self.down: str | None = None
        self.sent: list[str] = []

    def forward_wake(self, topic: str) -> None:
        self.sent.append(topic)

    def problem(self) -> str | None:
        return self.down


async def test_the_notifier_wakes_services_by_topic_here_and_in_other_processes() -> None:
    notifier = Notifier()
    notifier.remote = remote = Remote()
    webhooks, dreams = Recorder(), Recorder()
    webhooks.wake_on(notifier, "webhooks", 1.0)
    dreams.wake_on(notifier, "dreams", 1.0)
    await webhooks.start()
    await dreams.start()
    try:
        assert await webhooks.ran.get() == 1 and await dreams.ran.get() == 1
        notifier.wake("webhooks")
        assert await webhooks.ran.get() == 2
        assert await rounds_so_far(dreams) == []
        assert remote.sent == ["webhooks"]  # other processes' senders are told too
        notifier.wake("dreams", forward=False)  # heard from another process: not sent back
        assert await dreams.ran.get() == 2 and remote.sent == ["webhooks"]
    finally:
        await webhooks.stop()
        await dreams.stop()


async def test_a_long_sleep_ends_early_once_wake_ups_can_be_missed(tmp_path: Path) -> None:
    """Alone on SQLite a service sleeps its hour-long safety poll; a second process joining
    (nothing will tell this one of its work) shortens the sleep already under way."""
    notifier = Notifier()
    notifier.peers = SqlitePeers(str(tmp_path / "mas.db"), recheck_seconds=0)
    service = Recorder(interval_seconds=3600.0)
    service.wake_on(notifier, "webhooks", 0.05)
    await service.start()
    worker = SqlitePeers(str(tmp_path / "mas.db"))
    try:
        assert await service.ran.get() == 1
        assert await rounds_so_far(service) == []  # asleep, for an hour as things stand
        worker.join()
        assert await asyncio.wait_for(service.ran.get(), 60) == 2
    finally:
        worker.leave()
        await service.stop()


def test_the_safety_poll_is_short_only_while_wake_ups_can_be_missed(tmp_path: Path) -> None:
    notifier = Notifier()
    notifier.peers = SqlitePeers(str(tmp_path / "mas.db"))
    service = Recorder(interval_seconds=30.0)
    service.wake_on(notifier, "webhooks", 1.0)
    assert service.interval() == 30.0  # one process: every wake-up is heard
    worker = SqlitePeers(str(tmp_path / "mas.db"))
    worker.join()  # a separate worker on SQLite
    notifier.peers = SqlitePeers(str(tmp_path / "mas.db"))  # (a fresh answer, not the cached one)
    assert service.interval() == 1.0
    worker.leave()
    notifier.remote = remote = Remote()  # PostgreSQL: LISTEN hears every process...
    assert service.interval() == 30.0
    remote.down = "disconnected"  # ...unless its connection is lost
    assert service.interval() == 1.0
    assert Recorder(interval_seconds=0.5).interval() == 0.5  # no source: its own interval
