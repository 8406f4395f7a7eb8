"""Traces: with `MAS_OTLP_ENDPOINT` set, mas exports the spans of a turn over OTLP/HTTP to an
in-test collector, nested API request -> turn -> model request / tool call -> sandbox; log
lines carry the trace id."""

from __future__ import annotations

import asyncio
import io
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from tests.support.loop import TIMEOUT, loop_server, message, new_session, sdk, send, wait_idle
from tests.support.server import ServerThread


class Collector:
    """An OTLP/HTTP trace receiver: keeps every span it is sent (protobuf, as the SDK exports)."""

    def __init__(self) -> None:
        self.spans: list[Any] = []
        self.lock = threading.Lock()
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                request = ExportTraceServiceRequest.FromString(body)
                with collector.lock:
                    for resource in request.resource_spans:
                        for scope in resource.scope_spans:
                            collector.spans.extend(scope.spans)
                answer = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200 if self.path == "/v1/traces" else 404)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def named(self, prefix: str) -> list[Any]:
        with self.lock:
            return [s for s in self.spans if s.name.startswith(prefix)]


@pytest.fixture
def collector() -> Iterator[Collector]:
    receiver = Collector()
    receiver.thread.start()
    try:
        yield receiver
    finally:
        receiver.server.shutdown()
        receiver.server.server_close()


@pytest.fixture
def traced_server(collector: Collector, tmp_path: Path) -> Iterator[ServerThread]:
    yield from loop_server("sqlite", tmp_path, otlp_endpoint=collector.url)


async def _spans_of_the_turn(collector: Collector) -> dict[str, Any]:
    deadline = time.monotonic() + TIMEOUT
    while True:  # spans are exported in batches about every second
        found = {
            "request": collector.named("POST /v1/sessions/{session_id}/events"),
            "turn": collector.named("mas.turn"),
            "chat": collector.named("chat "),
            "tool": collector.named("execute_tool bash"),
            "sandbox": collector.named("sandbox.exec bash"),
        }
        if all(found.values()) and len(found["chat"]) >= 2:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"spans missing: {[k for k, v in found.items() if not v]}")
        await asyncio.sleep(0.2)


async def test_a_turn_is_one_trace_from_the_request_to_the_sandbox(
    traced_server: ServerThread, collector: Collector, json_lines: io.StringIO
) -> None:
    server = traced_server
    async with sdk(server.url) as client:
        session_id = await new_session(client)
        await send(client, session_id, message('/tool bash {"command": "echo traced"}'))
        await wait_idle(client, session_id)
    found = await _spans_of_the_turn(collector)

    [request] = found["request"]
    [turn] = found["turn"]
    [tool] = found["tool"]
    [sandbox] = found["sandbox"]
    # One trace: the request that sent the message, continued by the worker's turn.
    assert {s.trace_id for s in [request, turn, tool, sandbox, *found["chat"]]} == {request.trace_id}
    assert turn.parent_span_id == request.span_id
    assert all(chat.parent_span_id == turn.span_id for chat in found["chat"])
    assert tool.parent_span_id == turn.span_id
    assert sandbox.parent_span_id == tool.span_id
    attributes = {a.key: a.value for a in turn.attributes}
    assert attributes["mas.session_id"].string_value == session_id
    chat = {a.key: a.value for a in found["chat"][0].attributes}
    assert chat["gen_ai.usage.output_tokens"].int_value > 0
    # The turn's log lines name its trace.
    trace_id = request.trace_id.hex()
    lines = [json.loads(line) for line in json_lines.getvalue().splitlines()]
    turn_lines = [x for x in lines if x.get("session_id") == session_id and "turn" in x["message"]]
    assert turn_lines and all(line["trace_id"] == trace_id for line in turn_lines)
