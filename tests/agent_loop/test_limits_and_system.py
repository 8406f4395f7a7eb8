"""The per-turn limit of model requests, and system messages reaching the model."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator

import anthropic
import pytest

from tests.support.loop import (
    idles,
    loop_server,
    message,
    new_session,
    of_type,
    sdk,
    send,
    stop_reason,
    texts,
    turn,
    wait_idle,
)
from tests.support.server import ServerThread

SDK = anthropic.AsyncAnthropic
BASH = {"type": "tool_use", "name": "bash", "input": {"command": "echo again"}}


@pytest.fixture(scope="module")
def limited_server(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    yield from loop_server(backend, tmp_path_factory.mktemp(f"rounds-{backend}"), max_tool_rounds=3)


@pytest.fixture(scope="module")
async def limited(limited_server: ServerThread) -> AsyncIterator[SDK]:
    async with sdk(limited_server.url) as client:
        yield client


async def test_a_turn_stops_at_the_model_request_limit(limited: SDK) -> None:
    # A scripted model that asks for bash on every response of the turn, forever.
    script = {"turns": [[{"content": [BASH]}] * 10]}
    session_id = await new_session(limited, system=f"#offline-script-inline: {json.dumps(script)}")
    events = await turn(limited, session_id, "loop please")

    assert len(of_type(events, "span.model_request_start")) == 3
    (error,) = of_type(events, "session.error")
    assert error.error.type == "tool_use_limit_reached_error"
    assert error.error.retry_status.type == "exhausted"
    assert stop_reason(idles(events)[-1]) == {"type": "retries_exhausted"}

    # The limit is per turn: the next message gets a fresh budget and a normal answer.
    await send(limited, session_id, message("just talk"))
    events = await wait_idle(limited, session_id, count=2)
    assert stop_reason(idles(events)[-1])["type"] in ("retries_exhausted", "end_turn")


async def test_a_system_message_reaches_the_model_with_its_user_message(loop: SDK) -> None:
    session_id = await new_session(loop)
    await send(
        loop,
        session_id,
        message("what now?"),
        {"type": "system.message", "content": [{"type": "text", "text": "Answer in French."}]},
    )
    events = await wait_idle(loop, session_id)
    assert [e.type for e in of_type(events, "system.message")] == ["system.message"]
    (reply,) = texts(events)
    assert "what now?" in reply and "Answer in French." in reply  # the offline model quotes its input
