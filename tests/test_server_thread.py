"""The tests' in-process server (tests/support/server.py): a server that will not stop makes its
`stop` fail with where it is stuck, instead of leaking a thread that polls a dropped database."""

from __future__ import annotations

import threading
from pathlib import Path

import httpx
import pytest

from tests.conftest import make_settings
from tests.support.clients import API_KEY
from tests.support.databases import create_sqlite_database
from tests.support.server import ServerThread


def test_a_server_that_does_not_stop_fails_its_stop_with_where_it_is_stuck(tmp_path: Path) -> None:
    server = ServerThread(make_settings(create_sqlite_database(tmp_path)))
    entered, release = threading.Event(), threading.Event()

    @server.app.get("/stuck")
    async def stuck() -> None:
        entered.set()
        release.wait(60)  # blocks the server's event loop: it cannot see that it should exit

    server.start()
    caller = threading.Thread(
        target=lambda: httpx.get(server.url + "/stuck", headers={"x-api-key": API_KEY}, timeout=60)
    )
    caller.start()
    try:
        assert entered.wait(30)
        with pytest.raises(RuntimeError, match=r"did not stop within 0\.5 s \(still running\)") as raised:
            server.stop(timeout=0.5)
        assert "in stuck" in str(raised.value)  # the stack of the stuck thread names the culprit
    finally:
        release.set()
        caller.join(60)
    server.thread.join(30)
    assert not server.thread.is_alive()  # forced to exit once its loop runs again


def test_a_server_that_stops_stops_quietly(tmp_path: Path) -> None:
    server = ServerThread(make_settings(create_sqlite_database(tmp_path))).start()
    server.stop()
    assert not server.thread.is_alive()
