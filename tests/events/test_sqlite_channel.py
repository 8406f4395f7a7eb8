"""Processes on one SQLite file tell each other what they commit (`app.events.sqlite_channel`), as
LISTEN/NOTIFY does on PostgreSQL. Every safety poll here is an hour long: what arrives, arrives
because a peer said so. Two real processes (`mas serve` without its worker and `mas worker`), and
channels in this process next to peers that died or stopped reading."""

from __future__ import annotations

import asyncio
import signal
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from app.db.peers import SqlitePeers
from app.events.notifier import FetchEvents, LogEvent, Notifier, PreviewFrame
from app.events.sqlite_channel import FLUSH_SECONDS, SqliteChannel
from app.events.types import EventRecord
from tests.support.databases import create_sqlite_database
from tests.support.factories import text
from tests.support.loop import message, process_environment, sdk
from tests.support.server import ServerProcess, python_process, stop_tool_servers
from tests.support.streams import read_turn
from tests.webhooks.test_webhooks import new_session

HOUR = "3600"
# Fails instead of hanging; an hour-long safety poll would take far longer.
WITHIN = 90.0

CHANNEL_AND_WAIT = """
import asyncio, sys
from app.db.peers import SqlitePeers
from app.events.notifier import Notifier
from app.events.sqlite_channel import FLUSH_SECONDS, SqliteChannel
from app.events.types import EventRecord

async def main() -> None:
    async def fetch(session_id, after):
        return []
    channel = SqliteChannel(SqlitePeers(sys.argv[1]), Notifier(), fetch)
    channel.start()
    print("joined", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    await channel.close()

asyncio.run(main())
"""


def hour_long_polls(url: str, directory: Path) -> dict[str, str]:
    return {
        **process_environment(url, directory, lease_seconds=30),
        "MAS_WORKER_POLL_SECONDS": HOUR,
        "MAS_WEBHOOK_POLL_SECONDS": HOUR,
        "MAS_DEPLOYMENT_POLL_SECONDS": HOUR,
        "MAS_MISSED_WAKEUP_POLL_SECONDS": HOUR,
        "MAS_STREAM_POLL_SECONDS": HOUR,
        "MAS_STREAM_HEARTBEAT_SECONDS": HOUR,
    }


async def test_the_api_process_streams_what_a_separate_worker_runs(tmp_path: Path) -> None:
    """The worker claims the session the API created at once (it was told), and the API's stream
    gets the worker's events as they are committed (it was told and read them)."""
    url = await asyncio.to_thread(create_sqlite_database, tmp_path)
    env = hour_long_polls(url, tmp_path)
    api = ServerProcess({**env, "MAS_EMBEDDED_WORKER": "false"})
    worker = ServerProcess(env, args=["worker"])
    try:
        await asyncio.to_thread(api.start)
        await asyncio.to_thread(worker.start, False)
        await joined(SqlitePeers(url_file(url), recheck_seconds=0), 2)  # the API, then the worker
        async with sdk(api.url) as client:
            for turn in range(2):
                session_id = await new_session(client)
                async with await client.beta.sessions.events.stream(session_id) as stream:
                    await client.beta.sessions.events.send(
                        session_id,
                        events=[message(f"/say turn {turn}")],  # type: ignore[list-item]
                    )
                    events = await read_turn(stream, within=WITHIN)
                kinds = [e.type for e in events]
                assert {"session.status_running", "user.message", "agent.message"} <= set(kinds)
                assert kinds[-1] == "session.status_idle"
    finally:
        await asyncio.to_thread(worker.stop)
        await asyncio.to_thread(api.stop)
        stop_tool_servers(tmp_path / "sandbox")


async def test_an_interrupt_queued_through_the_api_is_announced_in_another_process(tmp_path: Path) -> None:
    url = await asyncio.to_thread(create_sqlite_database, tmp_path)
    api = ServerProcess({**hour_long_polls(url, tmp_path), "MAS_EMBEDDED_WORKER": "false"})
    try:
        await asyncio.to_thread(api.start)
        async with sdk(api.url) as client, channel(url_file(url)) as (notifier, _):
            session_id = await new_session(client)
            with notifier.interrupts(session_id) as announced:
                await client.beta.sessions.events.send(session_id, events=[{"type": "user.interrupt"}])
                await asyncio.wait_for(announced.wait(), WITHIN)
    finally:
        await asyncio.to_thread(api.stop)


async def joined(peers: SqlitePeers, count: int) -> None:
    for _ in range(int(WITHIN / 0.05)):
        if len(peers.others()) >= count:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"fewer than {count} processes joined: {peers.others()}")


def url_file(url: str) -> str:
    return url.removeprefix("sqlite+aiosqlite:///")


async def no_events(_session_id: str, _after: int) -> list[LogEvent]:
    return []


@asynccontextmanager
async def channel(
    database_file: str, recheck_seconds: float = 0, fetch: FetchEvents = no_events
) -> AsyncIterator[tuple[Notifier, SqliteChannel]]:
    notifier = Notifier()
    opened = SqliteChannel(SqlitePeers(database_file, recheck_seconds), notifier, fetch)
    opened.start()
    try:
        yield notifier, opened
    finally:
        await opened.close()


def peer_process(database_file: str) -> subprocess.Popen[bytes]:
    return python_process(CHANNEL_AND_WAIT, database_file, ready=b"joined\n")


async def test_a_dead_or_stuck_peer_does_not_stop_the_others_hearing(tmp_path: Path) -> None:
    database_file = str(tmp_path / "mas.db")
    dead = await asyncio.to_thread(peer_process, database_file)
    stuck = await asyncio.to_thread(peer_process, database_file)
    try:
        async with (
            channel(database_file) as (listening, heard),
            channel(database_file, 3600) as (_, sending),
        ):
            # The sender counts both other processes as live (its answer holds for an hour)...
            stream = listening.subscribe("sesn_previews")
            dead.kill()  # ...though one ends without a word, its socket left behind,
            await asyncio.to_thread(dead.communicate, timeout=30)
            stuck.send_signal(signal.SIGSTOP)  # and one reads nothing any more.
            count = 300  # more datagrams than a socket's queue (10 here) and a peer's outbox hold
            for index in range(count):
                sending.forward_ephemeral("sesn_previews", preview(index))
                await asyncio.sleep(FLUSH_SECONDS * 2)  # one datagram each
            got: list[Any] = []
            async with asyncio.timeout(WITHIN):
                while len(got) < count:
                    got.append(await stream.queue.get())
            assert [item.wire for item in got] == [preview(index) for index in range(count)]
            assert sending.problem() is None and heard.problem() is None
    finally:
        stuck.send_signal(signal.SIGCONT)
        await asyncio.to_thread(stuck.communicate, b"", 30)
        dead.kill()


def preview(index: int) -> PreviewFrame:
    return {"type": "event_start", "event": {"type": "agent.message", "id": f"sevt_{index}"}}


async def test_a_process_alone_sends_nothing_and_one_that_cannot_be_told_is_noticed(tmp_path: Path) -> None:
    database_file = str(tmp_path / "mas.db")
    async with channel(database_file) as (notifier, alone):
        notifier.wake("sessions")
        notifier.interrupt("sesn_x")
        assert alone._pending == [] and alone._links == {}
        assert notifier.hears_everyone()
        mute = SqlitePeers(database_file)  # a process without a socket (an older mas)
        await asyncio.to_thread(mute.join)
        try:
            assert not notifier.hears_everyone()
            assert alone.problem() is not None
        finally:
            mute.leave()
        assert notifier.hears_everyone()


async def test_a_process_that_joins_is_told_to_look_once_at_everything(tmp_path: Path) -> None:
    """What a peer committed between another's start and its hearing of that start is not lost:
    the newcomer's greeting is answered with a resync (every service woken)."""
    database_file = str(tmp_path / "mas.db")
    async with channel(database_file, recheck_seconds=3600) as (_, _first):
        woken = asyncio.Event()
        notifier = Notifier()
        notifier.on_wake("sessions", woken.set)
        late = SqliteChannel(SqlitePeers(database_file), notifier, no_events)
        late.start()
        try:
            await asyncio.wait_for(woken.wait(), WITHIN)
        finally:
            await late.close()


def agent_message(seq: int, words: str) -> LogEvent:
    wire: EventRecord = {"id": f"sevt_{seq}", "type": "agent.message", "content": [text(words)]}
    return LogEvent(seq, wire)


async def test_committed_events_travel_in_the_message_or_are_read_from_the_log(tmp_path: Path) -> None:
    """Small events reach the other process's streams as they are (no read of the log); one too
    large for a message is announced by its position and read from the log there."""
    database_file = str(tmp_path / "mas.db")
    large = agent_message(2, "x" * 10_000)
    reads: list[tuple[str, int]] = []

    async def log_read(session_id: str, after: int) -> list[LogEvent]:
        reads.append((session_id, after))
        return [large]

    async with channel(database_file, fetch=log_read) as (there, _), channel(database_file) as (here, _):
        stream = there.subscribe("sesn_log")
        here.publish_committed("sesn_log", [agent_message(1, "small")])
        first = await asyncio.wait_for(stream.queue.get(), WITHIN)
        assert first == agent_message(1, "small") and reads == []
        here.publish_committed("sesn_log", [large])
        assert await asyncio.wait_for(stream.queue.get(), WITHIN) == large
        assert reads == [("sesn_log", 1)]
