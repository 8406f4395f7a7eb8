"""Cassettes in one process: normalisation, ordered repeats, misses, versions, record_missing.

The upstream of the recording tests is the real offline model app, reached over ASGI.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx2
import pytest

from app.agent_loop.anthropic_client import AnthropicModelClient
from app.agent_loop.cassettes import matching
from app.agent_loop.cassettes.cassette import Cassette, CassetteError
from app.agent_loop.cassettes.transport import CassetteLibrary, CassetteTransport
from app.agent_loop.model_client import ModelRequest, ModelRequestFailed, complete
from app.config import CassetteMode
from app.offline.endpoints import create_offline_app


def request(text: str, *, tool_id: str = "toolu_01AbC", when: str = "2026-01-02T03:04:05Z") -> dict[str, Any]:
    return {
        "model": "claude-sonnet-4-6",
        "max_tokens": 100,
        "stream": True,
        "metadata": {"user_id": "sesn_123"},
        "system": [{"type": "text", "text": "sys", "cache_control": {"type": "ephemeral"}}],
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": f"{text} at {when}"}]},
            {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": tool_id, "name": "bash", "input": {}}],
            },
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": tool_id, "content": "ok"}]},
        ],
    }


def test_volatile_parts_are_normalised_away() -> None:
    first: Any = matching.normalise(request("hi"))  # indexed as the JSON it is
    second = matching.normalise(request("hi", tool_id="toolu_99zz", when="2031-12-31 23:59:59.123+02:00"))
    assert first == second
    assert "metadata" not in first and "stream" not in first
    assert "cache_control" not in json.dumps(first)
    assert first["messages"][1]["content"][0]["id"] == "toolu_1"
    assert first["messages"][2]["content"][0]["tool_use_id"] == "toolu_1"
    assert first["messages"][0]["content"][0]["text"] == "hi at <timestamp>"
    assert matching.normalise(first) == first  # stored requests normalise to themselves


def test_differences_name_the_path_and_both_values() -> None:
    found = matching.differences(matching.normalise(request("hi")), matching.normalise(request("bye")))
    assert found == [
        'messages[0].content[0].text: recorded "hi at <timestamp>", requested "bye at <timestamp>"'
    ]


def offline_client(library: CassetteLibrary, upstream: bool = True) -> AnthropicModelClient:
    offline = httpx2.ASGITransport(app=create_offline_app()) if upstream else None
    transport = CassetteTransport(library, offline)
    return AnthropicModelClient(
        api_key="sk-ant-unit-secret-key",
        base_url="http://offline.test",
        http_client=httpx2.AsyncClient(transport=transport),
    )


def ask(text: str) -> ModelRequest:
    return ModelRequest(
        model="claude-sonnet-4-6", max_tokens=200, messages=[{"role": "user", "content": text}]
    )


async def answers(tmp_path: Path, mode: CassetteMode, texts: list[str], upstream: bool = True) -> list[str]:
    client = offline_client(CassetteLibrary(tmp_path, "unit", mode), upstream)
    try:
        return [(await complete(client, ask(text))).text for text in texts]
    finally:
        await client.aclose()


async def test_repeated_identical_requests_replay_in_order_then_the_last_again(tmp_path: Path) -> None:
    recorded = await answers(tmp_path, "record", ["/say one", "/say one"])
    document = json.loads((tmp_path / "unit.json").read_text())
    # Hand-edit the second recording so the two answers can be told apart.
    second = document["interactions"][1]["response"]["events"]
    for frame in second:
        if frame["event"] == "content_block_delta":
            frame["data"]["delta"]["text"] = frame["data"]["delta"]["text"].replace("one", "two")
    (tmp_path / "unit.json").write_text(json.dumps(document, indent=2))
    replayed = await answers(tmp_path, "replay", ["/say one"] * 3, upstream=False)
    assert recorded[0] == recorded[1] and "one" in recorded[0]
    assert replayed == [recorded[0], recorded[0].replace("one", "two"), recorded[0].replace("one", "two")]


async def test_record_missing_replays_what_it_has_and_records_the_rest(tmp_path: Path) -> None:
    await answers(tmp_path, "record", ["/say alpha"])
    await answers(tmp_path, "record_missing", ["/say alpha", "/say beta"])
    document = json.loads((tmp_path / "unit.json").read_text())
    texts = [i["request"]["body"]["messages"][0]["content"] for i in document["interactions"]]
    assert texts == ["/say alpha", "/say beta"]
    assert "sk-ant-unit-secret-key" not in json.dumps(document)
    assert "beta" in (await answers(tmp_path, "replay", ["/say beta"], upstream=False))[0]


async def test_a_miss_is_a_non_retryable_model_error_with_the_closest_request(tmp_path: Path) -> None:
    await answers(tmp_path, "record", ["/say alpha", "/say gamma"])
    with pytest.raises(ModelRequestFailed) as caught:
        await answers(tmp_path, "replay", ["/say alphb"], upstream=False)
    message = caught.value.message
    assert "closest recorded request is interaction #1 of 2" in message
    assert 'messages[0].content: recorded "/say alpha", requested "/say alphb"' in message


async def test_a_missing_cassette_says_how_to_record_it(tmp_path: Path) -> None:
    with pytest.raises(ModelRequestFailed, match="does not exist; record it with MAS_MODEL_BACKEND=record"):
        await answers(tmp_path, "replay", ["/say hi"], upstream=False)


def test_versions_newer_are_refused_and_names_are_checked(tmp_path: Path) -> None:
    (tmp_path / "future.json").write_text(json.dumps({"version": 99, "interactions": []}))
    with pytest.raises(CassetteError, match="written by a newer mas"):
        Cassette.open(tmp_path, "future")
    (tmp_path / "junk.json").write_text("{not json")
    with pytest.raises(CassetteError, match="cannot be read"):
        Cassette.open(tmp_path, "junk")
    for bad in ("../escape", "/abs", "a//b", "sp ace"):
        with pytest.raises(CassetteError, match="invalid cassette name"):
            Cassette.open(tmp_path, bad)


async def test_recording_starts_a_cassette_afresh_once_per_process(tmp_path: Path) -> None:
    await answers(tmp_path, "record", ["/say old"])  # an earlier recording run
    library = CassetteLibrary(tmp_path, "unit", "record")
    client = offline_client(library)
    try:
        await complete(client, ask("/say first"))
        await library.use("another")
        await library.use("unit")  # a second test sharing the cassette keeps the first one's answers
        await complete(client, ask("/say second"))
    finally:
        await client.aclose()
    document = json.loads((tmp_path / "unit.json").read_text())
    texts = [i["request"]["body"]["messages"][0]["content"] for i in document["interactions"]]
    assert texts == ["/say first", "/say second"]
