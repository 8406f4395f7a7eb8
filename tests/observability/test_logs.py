"""Log lines carry the context of their work: a turn's lines name its session and worker, an
access line its request id and session; JSON lines parse, text lines stay readable."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app.observability import logs
from app.observability.context import request_id_var, session_id_var
from tests.support.clients import API_KEY
from tests.support.loop import loop_server, message, new_session, sdk, send, wait_idle
from tests.support.server import ServerThread


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerThread]:
    yield from loop_server("sqlite", tmp_path, access_log=True)


def parsed(out: io.StringIO) -> list[dict[str, str]]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


async def test_the_log_lines_of_a_turn_carry_the_session_id(
    server: ServerThread, json_lines: io.StringIO
) -> None:
    async with sdk(server.url) as client:
        session_id = await new_session(client)
        await send(client, session_id, message('/tool bash {"command": "true"}'))
        await wait_idle(client, session_id)
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as http:
            answer = await http.get(f"/v1/sessions/{session_id}", headers={"x-api-key": API_KEY})
    lines = [line for line in parsed(json_lines) if line.get("session_id") == session_id]
    messages = [line["message"] for line in lines]
    assert "turn started" in messages
    assert any(m.startswith("turn ended (end_turn) after ") for m in messages)
    turn = [line for line in lines if line["logger"] == "app.sessions.transitions"]
    assert turn and all(line["worker_id"] and line["level"] == "info" for line in turn)
    # The access line of the GET: its request id is the one the client got back.
    [access] = [
        line
        for line in lines
        if line["logger"] == "mas.access" and line["message"].startswith(f"GET /v1/sessions/{session_id} ")
    ]
    assert access["request_id"] == answer.headers["request-id"]
    assert access["message"].split()[2] == "200"


def test_text_lines_name_their_context_after_the_message() -> None:
    out = io.StringIO()
    logger = logging.getLogger("mas.test.text")
    logger.addHandler(logs.handler("text", out))
    logger.propagate = False
    request = request_id_var.set("req_1")
    session = session_id_var.set("sesn_1")
    try:
        logger.warning("something %s", "happened")
        try:
            raise ValueError("boom")
        except ValueError:
            logger.exception("failed")
    finally:
        session_id_var.reset(session)
        request_id_var.reset(request)
        logger.handlers.clear()
    first, second, *trace = out.getvalue().splitlines()
    assert first.endswith("WARNING mas.test.text: something happened [request_id=req_1 session_id=sesn_1]")
    assert second.endswith("ERROR mas.test.text: failed [request_id=req_1 session_id=sesn_1]")
    assert trace[0] == "Traceback (most recent call last):" and trace[-1] == "ValueError: boom"
    # Outside any request or session the line is as plain as before.
    logger.addHandler(logs.handler("text", out))
    try:
        logger.warning("idle")
    finally:
        logger.handlers.clear()
    assert out.getvalue().splitlines()[-1].endswith("WARNING mas.test.text: idle")
