"""GET/PUT /v1/mas/cassette: switching cassettes, and bad input answered in the API's envelope."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import make_settings
from tests.support.clients import API_KEY
from tests.support.server import ServerThread

HEADERS = {"x-api-key": API_KEY}


@pytest.fixture(scope="module")
def cassette_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cassettes")


@pytest.fixture(scope="module")
def replaying(database_url: str, cassette_dir: Path) -> Iterator[httpx.Client]:
    settings = make_settings(
        database_url, model_backend="replay", cassette_dir=cassette_dir, cassette="first"
    )
    server = ServerThread(settings).start()
    try:
        with httpx.Client(base_url=server.url, headers=HEADERS, timeout=30) as client:
            yield client
    finally:
        server.stop()


def error_of(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error"
    return str(body["error"]["message"])


def test_the_cassette_in_use_is_shown_and_switched(replaying: httpx.Client, cassette_dir: Path) -> None:
    state = replaying.get("/v1/mas/cassette").json()
    assert state == {
        "type": "mas_cassette",
        "name": "first",
        "mode": "replay",
        "path": str(cassette_dir / "first.json"),
        "interactions": 0,
    }
    (cassette_dir / "suite").mkdir(exist_ok=True)
    recorded = {"request": {"endpoint": "/v1/messages/count_tokens", "body": {"model": "m", "messages": []}}}
    document = {
        "version": 1,
        "interactions": [{**recorded, "response": {"status": 200, "body": {"input_tokens": 3}}}],
    }
    (cassette_dir / "suite" / "second.json").write_text(json.dumps(document))
    switched = replaying.put("/v1/mas/cassette", json={"name": "suite/second"})
    assert switched.status_code == 200, switched.text
    assert switched.json()["interactions"] == 1
    assert replaying.get("/v1/mas/cassette").json()["name"] == "suite/second"


@pytest.mark.parametrize("name", ["../outside", "/etc/passwd", "a//b", "with space", ""])
def test_a_bad_name_is_a_400(replaying: httpx.Client, name: str) -> None:
    error_of(replaying.put("/v1/mas/cassette", json={"name": name}), 400)


def test_a_cassette_from_a_newer_mas_is_a_400_that_says_so(
    replaying: httpx.Client, cassette_dir: Path
) -> None:
    (cassette_dir / "future.json").write_text(json.dumps({"version": 99, "interactions": []}))
    message = error_of(replaying.put("/v1/mas/cassette", json={"name": "future"}), 400)
    assert "written by a newer mas" in message


def test_a_server_without_cassettes_says_how_to_get_them(http: httpx.Client) -> None:
    message = error_of(http.get("/v1/mas/cassette"), 400)
    assert "MAS_MODEL_BACKEND=record, replay or record_missing" in message
    error_of(http.put("/v1/mas/cassette", json={"name": "x"}), 400)
