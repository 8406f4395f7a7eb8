"""`mas files upload|list|download` against a real server: byte-exact round trip with progress,
and server errors shown as the API's message with a failing exit code."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from app.cli import cli
from tests.conftest import make_settings
from tests.support.clients import API_KEY
from tests.support.server import ServerThread


@pytest.fixture(scope="module")
def downloadable_server(database_url: str) -> Iterator[ServerThread]:
    server = ServerThread(make_settings(database_url, files_uploads_downloadable=True)).start()
    try:
        yield server
    finally:
        server.stop()


def _run(server: ServerThread, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, [*args, "--url", server.url, "--api-key", API_KEY])
    return result.exit_code, result.output


def test_upload_list_download_round_trip(downloadable_server: ServerThread, tmp_path: Path) -> None:
    source = tmp_path / "data.bin"
    data = os.urandom(3 * 1024 * 1024 + 5)
    source.write_bytes(data)
    code, out = _run(downloadable_server, "files", "upload", str(source))
    assert code == 0, out
    file_id = out.strip().splitlines()[-1].split()[0]
    assert file_id.startswith("file_") and f"{len(data)} bytes" in out

    code, out = _run(downloadable_server, "files", "list", "--limit", "1000")
    assert code == 0 and file_id in out and "data.bin" in out
    # --json pages through everything (a page of one here) and keeps the API's shape.
    code, out = _run(downloadable_server, "files", "list", "--limit", "1", "--json")
    assert code == 0, out
    listed = {f["id"]: f for f in json.loads(out)}
    assert listed[file_id]["size_bytes"] == len(data) and listed[file_id]["filename"] == "data.bin"
    assert len(listed) >= 1 and all(f["type"] == "file" for f in listed.values())

    target = tmp_path / "back.bin"
    code, out = _run(downloadable_server, "files", "download", file_id, "-o", str(target))
    assert code == 0, out
    assert target.read_bytes() == data and not (tmp_path / "back.bin.part").exists()


def test_errors_show_the_api_message(mas_server: ServerThread, tmp_path: Path) -> None:
    source = tmp_path / "in.txt"
    source.write_text("input")
    code, out = _run(mas_server, "files", "upload", str(source))
    assert code == 0, out
    file_id = out.strip().splitlines()[-1].split()[0]
    code, out = _run(mas_server, "files", "download", file_id, "-o", str(tmp_path / "x"))
    assert code == 1 and "error 400" in out and "not downloadable" in out
    code, out = _run(mas_server, "files", "download", "file_nope")
    assert code == 1 and "error 404" in out
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    code, out = _run(mas_server, "files", "upload", str(empty))
    assert code == 1 and "the file is empty" in out
