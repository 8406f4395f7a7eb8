"""`/metrics`: a scrape after a real turn (offline model, a bash call in the sandbox) shows the
turn, its model requests, the tool call, the HTTP requests by route template, and the database's
gauges; it is protected like the API unless configured public."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.clients import API_KEY
from tests.support.factories import MODEL
from tests.support.loop import loop_server, message, new_session, sdk
from tests.support.server import ServerThread

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
BASH = 'hello\n/tool bash {"command": "echo from-the-sandbox"}'


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerThread]:
    yield from loop_server("sqlite", tmp_path)


@pytest.fixture
def public_server(tmp_path: Path) -> Iterator[ServerThread]:
    yield from loop_server("sqlite", tmp_path, metrics_public=True)


def scrape(url: str, **headers: str) -> Samples:
    answer = httpx.get(url + "/metrics", headers=headers, timeout=60)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain; version=")
    samples: Samples = {}
    for family in text_string_to_metric_families(answer.text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum over every series of ``name`` whose labels include ``labels``."""
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= ls)


async def test_a_scrape_after_a_turn_shows_the_turn_the_model_requests_and_the_tool_call(
    server: ServerThread,
) -> None:
    key = {"x-api-key": API_KEY}
    before = scrape(server.url, **key)
    async with sdk(server.url) as client:
        session_id = await new_session(client)
        async with await client.beta.sessions.events.stream(session_id) as stream:
            await client.beta.sessions.events.send(session_id, events=[message(BASH)])  # type: ignore[list-item]
            async for event in stream:
                if event.type == "session.status_idle":
                    break
    after = scrape(server.url, **key)

    def grew(name: str, **labels: str) -> float:
        return total(after, name, **labels) - total(before, name, **labels)

    assert grew("mas_turns_started_total") >= 1
    assert grew("mas_turn_duration_seconds_count", stop_reason="end_turn") >= 1
    # The tool call's request, then the answer after its result.
    assert grew("mas_model_request_duration_seconds_count", model=MODEL, outcome="ok") >= 2
    output = grew("mas_model_tokens_total", model=MODEL, kind="output")
    assert output > 0  # and the prompt's tokens: input, cache reads and writes
    assert grew("mas_model_tokens_total", model=MODEL) > output
    assert grew("mas_tool_call_duration_seconds_count", tool="bash", outcome="ok") >= 1
    assert grew("mas_event_delivery_seconds_count") >= 1
    sent = {"method": "POST", "route": "/v1/sessions/{session_id}/events", "status": "200"}
    assert grew("mas_http_request_duration_seconds_count", **sent) >= 1
    # Route templates, never ids, as labels.
    assert not any(session_id in str(labels) for _, labels in after)
    assert value(after, "mas_sessions", status="idle") >= 1
    for queue in ("sessions_runnable", "work_items", "webhook_deliveries"):
        assert (("mas_queue_depth", frozenset({("queue", queue)}))) in after


async def test_metrics_take_an_api_key(server: ServerThread) -> None:
    async with httpx.AsyncClient(base_url=server.url, timeout=60) as http:
        anonymous = await http.get("/metrics")
        wrong = await http.get("/metrics", headers={"authorization": "Bearer sk-wrong"})
        bearer = await http.get("/metrics", headers={"authorization": f"Bearer {API_KEY}"})
    assert anonymous.status_code == wrong.status_code == 401
    assert anonymous.json()["error"]["type"] == "authentication_error"
    assert bearer.status_code == 200 and "mas_http_request_duration_seconds" in bearer.text


async def test_public_metrics_need_no_key(public_server: ServerThread) -> None:
    assert value(scrape(public_server.url), "mas_sessions", status="idle") == 0.0


def test_processes_sharing_a_multiprocess_directory_are_scraped_as_one(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    from app.observability.metrics import exposition

    record = (
        "import sys\n"
        "from pathlib import Path\n"
        "from app.observability import metrics as m\n"
        "m.TOOL_CALLS.labels('bash', 'ok').observe(0.5)\n"
        "m.WORKER_LEASES.inc()\n"
        "if sys.argv[1] == 'stops-cleanly':\n"
        "    m.process_exited(Path(sys.argv[2]))\n"
    )
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    for how in ("stops-cleanly", "still-running"):
        command = [sys.executable, "-c", record, how, str(tmp_path)]
        subprocess.run(command, env=env, check=True, timeout=120)
    samples: Samples = {}
    for family in text_string_to_metric_families(exposition(tmp_path).decode()):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    # Counters and histograms keep what every process recorded; live gauges only what the
    # processes that have not stopped hold.
    assert value(samples, "mas_tool_call_duration_seconds_count", tool="bash", outcome="ok") == 2
    assert value(samples, "mas_worker_leases_held") == 1
