"""`mas serve` and a separate `mas worker` on one SQLite database, two real processes: SQLite
carries no wake-ups between them, so each polls at `MAS_MISSED_WAKEUP_POLL_SECONDS` while it knows
the other is live (`app.db.peers`). Here the worker sends no webhooks (`MAS_WEBHOOKS_ENABLED=false`)
and every long safety poll is an hour: the webhook the worker queues when its turn ends is sent by
the API process within that short poll, and the worker takes the API's message the same way."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from tests.support.databases import create_sqlite_database
from tests.support.loop import message, process_environment, sdk, wait_idle
from tests.support.server import ServerProcess, stop_tool_servers
from tests.webhooks.receiver import Receiver
from tests.webhooks.test_webhooks import events_about, new_session, register, wait_until

HOUR = "3600"


async def test_the_api_process_sends_the_webhooks_a_separate_worker_queues(tmp_path: Path) -> None:
    url = await asyncio.to_thread(create_sqlite_database, tmp_path)
    env = {
        **process_environment(url, tmp_path, lease_seconds=30),
        "MAS_WORKER_POLL_SECONDS": HOUR,
        "MAS_WEBHOOK_POLL_SECONDS": HOUR,
        "MAS_DEPLOYMENT_POLL_SECONDS": HOUR,
        "MAS_MISSED_WAKEUP_POLL_SECONDS": "1",
    }
    api = ServerProcess({**env, "MAS_EMBEDDED_WORKER": "false"})
    worker = ServerProcess({**env, "MAS_WEBHOOKS_ENABLED": "false"}, args=["worker"])
    receiver = Receiver().start()
    try:
        await asyncio.to_thread(api.start)
        await asyncio.to_thread(worker.start, False)
        endpoint = await register(api.url, receiver.url, "session.status_idled")
        async with sdk(api.url) as client:
            session_id = await new_session(client)
            await client.beta.sessions.events.send(session_id, events=[message("/say hello")])  # type: ignore[list-item]
            await wait_idle(client, session_id)  # the worker ran the turn and queued the webhook

            async def idled() -> list[Any]:
                return events_about(receiver, client, endpoint["signing_secret"], session_id)

            (delivered,) = await wait_until(idled, "the webhook of the worker's turn")
        assert delivered.type == "event" and delivered.data.type == "session.status_idled"
    finally:
        receiver.stop()
        await asyncio.to_thread(worker.stop)
        await asyncio.to_thread(api.stop)
        stop_tool_servers(tmp_path / "sandbox")
