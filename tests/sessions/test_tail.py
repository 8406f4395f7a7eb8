"""`mas sessions tail` against a real server running the offline model: a subprocess whose output
is read while the turn runs (messages, a tool call with its input and output, model request timing
and tokens, an error), that ends when the session is deleted or on Ctrl-C, and whose `--json`
prints the raw events line by line."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import anthropic
import pytest

from app.events.notifier import PreviewFrame
from app.events.types import EventRecord
from app.sessions.tail import Renderer
from app.shared.content import ContentBlock
from tests.support.clients import API_KEY
from tests.support.factories import make_agent, make_session, user_message
from tests.support.server import ROOT, ServerThread

# A deadline for waits, not a speed bound: several suites share two cores.
WAIT = 120.0
TOOLSET = {"type": "agent_toolset_20260401"}


class Tail:
    """A running `mas sessions tail` whose stdout lines are collected as they come."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def until(self, found: Callable[[list[str]], bool]) -> list[str]:
        """Every line so far once `found` holds for them (fails at the deadline or at exit)."""
        deadline = time.monotonic() + WAIT
        while not found(self.lines):
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"tail did not print what was expected: {self.lines}"
            try:
                line = self._queue.get(timeout=remaining)
            except queue.Empty:
                continue
            assert line is not None, f"tail exited ({self.proc.wait()}) early: {self.lines}"
            self.lines.append(line)
        return self.lines

    def has(self, text: str) -> list[str]:
        return self.until(lambda lines: any(text in line for line in lines))


@contextmanager
def tail(server: ServerThread, session_id: str, *args: str) -> Iterator[Tail]:
    command = [sys.executable, "-m", "app", "sessions", "tail", session_id, "--url", server.url]
    proc = subprocess.Popen(
        [*command, "--api-key", API_KEY, *args],
        cwd=ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    watching = Tail(proc)
    try:
        yield watching
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        watching.reader.join(WAIT)  # it reads to the end of the output before the pipes close
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()


def send(client: anthropic.Anthropic, session_id: str, text: str) -> None:
    client.beta.sessions.events.send(session_id, events=[user_message(text)])  # type: ignore[list-item]


def test_a_turn_is_shown_live_and_the_tail_ends_when_the_session_is_deleted(
    mas_server: ServerThread, client: anthropic.Anthropic
) -> None:
    session = make_session(client, agent=make_agent(client, tools=[TOOLSET]).id)
    with tail(mas_server, session.id) as watching:
        watching.has("-- following " + session.id)  # started (a loaded machine takes seconds)
        say = "Looking at the shell now."
        command = json.dumps({"command": "echo tail-$((6*7))"})
        send(client, session.id, f"/sleep 3000\n/say {say}\n/tool bash {command}")
        # Read while the turn runs (the model takes seconds): the message, then the answer.
        watching.has("-- running")
        watching.has("    /say " + say)

        lines = watching.has("-- idle (end_turn)")
        text = "\n".join(lines)
        assert "tool bash\n    echo tail-$((6*7))" in text
        assert "tool result\n    tail-42" in text
        assert f"agent\n    {say}" in text
        assert text.count(say) == 2, lines  # the user's message and the answer, once each
        requests = [line for line in lines if "model request" in line]
        assert len(requests) == 2, lines  # the call, then the answer to its result
        for line in requests:
            assert " FAILED" not in line and "s (in " in line and " · out " in line

        send(client, session.id, "/fault invalid")
        error = watching.has("ERROR ")
        assert any("ERROR model_request_failed_error (exhausted)" in line for line in error)
        assert any("model request FAILED" in line for line in error)
        watching.has("-- idle (retries_exhausted)")

        client.beta.sessions.delete(session.id)
        watching.has("-- session deleted")
        assert watching.proc.wait(timeout=WAIT) == 0


def test_json_prints_each_raw_event_on_a_line_after_the_history(
    mas_server: ServerThread, client: anthropic.Anthropic
) -> None:
    session = make_session(client)
    send(client, session.id, "before the tail")
    listed = wait_for_idle(client, session.id)
    with tail(mas_server, session.id, "--json", "-n", "2") as watching:
        watching.until(lambda lines: len(lines) >= 2)
        send(client, session.id, "while tailing")
        lines = watching.until(
            lambda lines: len(lines) > 2 and json.loads(lines[-1])["type"] == "session.status_idle"
        )
        events = [json.loads(line) for line in lines]
        history = [e.id for e in client.beta.sessions.events.list(session.id)]
        assert [e["id"] for e in events] == history[len(listed) - 2 :]
        assert all(e["processed_at"] and e["type"] for e in events)
        assert "while tailing" in json.dumps(events)

        watching.proc.send_signal(signal.SIGINT)  # Ctrl-C: a quiet exit, no traceback
        assert watching.proc.wait(timeout=WAIT) == 130
        assert watching.proc.stderr is not None and "Traceback" not in watching.proc.stderr.read()


def wait_for_idle(client: anthropic.Anthropic, session_id: str) -> list[str]:
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        events = list(client.beta.sessions.events.list(session_id))
        if events and events[-1].type == "session.status_idle":
            return [e.id for e in events]
        time.sleep(0.2)
    pytest.fail("the turn did not end")


def test_an_unknown_session_is_an_error_with_the_api_message(mas_server: ServerThread) -> None:
    with tail(mas_server, "sesn_missing") as watching:
        assert watching.proc.wait(timeout=WAIT) == 1
        assert watching.proc.stderr is not None
        assert "error 404" in watching.proc.stderr.read()


def start(message_id: str) -> PreviewFrame:
    return {"type": "event_start", "event": {"type": "agent.message", "id": message_id}}


def delta(message_id: str, index: int, text: str) -> PreviewFrame:
    content: ContentBlock = {"type": "text", "text": text}
    return {
        "type": "event_delta",
        "event_id": message_id,
        "delta": {"type": "content_delta", "index": index, "content": content},
    }


def message(message_id: str, *texts: str) -> EventRecord:
    content: list[ContentBlock] = [{"type": "text", "text": t} for t in texts]
    return {
        "type": "agent.message",
        "id": message_id,
        "processed_at": "2026-11-30T08:00:01Z",
        "content": content,
    }


def test_an_answer_is_shown_as_it_streams_and_not_again_when_it_is_complete() -> None:
    renderer = Renderer()
    out = [renderer.feed(start("sevt_1"))]
    out += [renderer.feed(delta("sevt_1", 0, t)) for t in ("Hel", "lo\nwor", "ld")]
    out.append(renderer.feed(delta("sevt_1", 1, "second block")))
    assert "".join(out).endswith(" agent\n    Hello\n    world\n    second block")
    assert renderer.feed(message("sevt_1", "Hello\nworld", "second block")) == "\n"
    assert renderer.feed({"type": "session.status_idle", "processed_at": "2026-11-30T08:00:02Z"}) == (
        "08:00:02 -- idle (end_turn)\n"
    )


def test_a_cut_preview_is_followed_by_the_whole_message() -> None:
    renderer = Renderer()
    renderer.feed(start("sevt_2"))
    renderer.feed(delta("sevt_2", 0, "Hel"))  # the connection dropped here; the rest came later
    assert renderer.feed(message("sevt_2", "Hello")) == "\n08:00:01 agent\n    Hello\n"
    # Deltas of a message this renderer did not see start are not shown.
    assert renderer.feed(delta("sevt_3", 0, "stray")) == ""
