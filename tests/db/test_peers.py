"""Processes sharing one SQLite database know whether another is live (`app.db.peers`): a process
that has company polls at the short interval, since SQLite tells it nothing of the other's work.
A process that ends however it ends (here `kill -9`) stops counting, and its file is removed."""

from __future__ import annotations

import subprocess
from pathlib import Path

from app.db.peers import SqlitePeers
from tests.support.server import python_process

JOIN_AND_WAIT = """
import sys
from app.db.peers import SqlitePeers
peers = SqlitePeers(sys.argv[1])
peers.join()
print("joined", flush=True)
sys.stdin.read()
peers.leave()
"""


def joined(database_file: str) -> subprocess.Popen[bytes]:
    return python_process(JOIN_AND_WAIT, database_file, ready=b"joined\n")


def test_a_process_sees_another_only_while_it_lives(tmp_path: Path) -> None:
    database_file = str(tmp_path / "mas.db")
    here = SqlitePeers(database_file, recheck_seconds=0)
    here.join()
    try:
        assert not here.others_live()  # alone: its own file does not count
        killed = joined(database_file)
        try:
            assert here.others_live()
        finally:
            killed.kill()  # no chance to leave: the kernel drops its lock with the process
            killed.communicate(timeout=30)
        assert not here.others_live()
        assert [path.name for path in here.directory.iterdir()] == [here.name]  # the dead one's removed

        leaving = joined(database_file)
        assert here.others_live()
        leaving.communicate(b"", timeout=30)  # leaves and exits
        assert not here.others_live()
    finally:
        here.leave()
    assert list(here.directory.iterdir()) == []


def test_an_answer_holds_for_its_recheck_interval(tmp_path: Path) -> None:
    database_file = str(tmp_path / "mas.db")
    here = SqlitePeers(database_file, recheck_seconds=3600)
    assert not here.others_live()
    other = joined(database_file)
    try:
        assert not here.others_live()  # asked before every loop service's sleep: not a scan each time
        assert SqlitePeers(database_file).others_live()
    finally:
        other.communicate(b"", timeout=30)
