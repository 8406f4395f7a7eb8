"""Bad input is a 400 in the error envelope on both databases, never a 500 (issue 8, items 5 and 9).

Each case once reached the database or a recursive parser and came back as a 500 on SQLite,
PostgreSQL or both: integers above a column's range, forged cursors, lone surrogates and NUL
characters in any string field, JSON nested far deeper than any real request.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.postgres


def _cursor(payload: Any) -> str:
    return "page_" + base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")


def _deep_cursor(levels: int) -> str:
    raw = b'{"o":"desc","k":' + b"[" * levels + b"]" * levels + b"}"
    return "page_" + base64.urlsafe_b64encode(raw).decode()


def _assert_400(response: httpx.Response, *words: str) -> dict[str, Any]:
    assert response.status_code == 400, response.text
    envelope: dict[str, Any] = response.json()
    assert envelope["type"] == "error" and envelope["error"]["type"] == "invalid_request_error"
    assert envelope["request_id"] == response.headers["request-id"]
    for word in words:
        assert word in envelope["error"]["message"], envelope["error"]["message"]
    return envelope


@pytest.fixture(scope="module")
def ids(http: httpx.Client) -> dict[str, str]:
    env = http.post("/v1/environments", json={"name": "bad-input"}).json()
    agent = http.post("/v1/agents", json={"name": "bad-input", "model": "claude-sonnet-4-6"}).json()
    session = http.post("/v1/sessions", json={"agent": agent["id"], "environment_id": env["id"]}).json()
    return {"env": env["id"], "agent": agent["id"], "session": session["id"]}


@pytest.mark.parametrize("version", ["9223372036854775808", "2147483648", "99999999999999999999999"])
def test_versions_above_the_column_range(http: httpx.Client, ids: dict[str, str], version: str) -> None:
    _assert_400(http.get(f"/v1/agents/{ids['agent']}", params={"version": version}), "version")
    _assert_400(http.get("/v1/sessions", params={"agent_id": ids["agent"], "agent_version": version}))
    pinned = {"type": "agent", "id": ids["agent"], "version": int(version)}
    _assert_400(http.post("/v1/sessions", json={"agent": pinned, "environment_id": ids["env"]}), "version")
    _assert_400(http.post(f"/v1/agents/{ids['agent']}", json={"version": int(version), "name": "x"}))
    # The largest version a column holds is a plain "not found".
    assert http.get(f"/v1/agents/{ids['agent']}", params={"version": 2**31 - 1}).status_code == 404


LISTS = ["/v1/agents", "/v1/sessions", "/v1/environments", "/v1/memory_stores", "/v1/skills"]


@pytest.mark.parametrize("path", [*LISTS, "events", "versions"])
@pytest.mark.parametrize(
    "cursor",
    [
        _cursor({"o": "desc", "k": ["2026-01-01T00:00:00", "agent_x"], "d": "next"}),
        _cursor({"o": "desc", "k": ["2026-01-01T00:00:00+00:00\u0000", "a\u0000"]}),
        _cursor({"o": "desc", "k": ["log", 2**70]}),
        _cursor({"o": "desc", "k": [2**40]}),
        _cursor({"o": "desc", "k": ["x\ud800", 1]}),
        _deep_cursor(5000),
        _deep_cursor(50),
    ],
)
def test_forged_cursors(http: httpx.Client, ids: dict[str, str], path: str, cursor: str) -> None:
    if path == "events":
        path = f"/v1/sessions/{ids['session']}/events"
    elif path == "versions":
        path = f"/v1/agents/{ids['agent']}/versions"
    response = http.get(path, params={"page": cursor})
    # A naive timestamp is read as UTC (an empty or short page); anything else is refused.
    if response.status_code == 200:
        assert 'T00:00:00"' in base64.urlsafe_b64decode(cursor[5:] + "==").decode()
        return
    _assert_400(response, "page")


def _raw(http: httpx.Client, path: str, body: str) -> httpx.Response:
    return http.post(path, content=body.encode(), headers={"content-type": "application/json"})


@pytest.mark.parametrize("escape", ["\\ud800", "\\udfff", "\\u0000"])
def test_unstorable_text_in_any_field(http: httpx.Client, ids: dict[str, str], escape: str) -> None:
    bad = f'"a{escape}b"'
    events = f'{{"events":[{{"type":"user.message","content":[{{"type":"text","text":{bad}}}]}}]}}'
    _assert_400(_raw(http, f"/v1/sessions/{ids['session']}/events", events), "events[0].content[0].text")
    _assert_400(_raw(http, "/v1/agents", f'{{"name":{bad},"model":"claude-sonnet-4-6"}}'), "name")
    _assert_400(_raw(http, "/v1/agents", f'{{"name":"a","model":"m","system":{bad}}}'), "system")
    _assert_400(_raw(http, "/v1/environments", f'{{"name":"e","description":{bad}}}'), "description")
    session = f'{{"agent":"{ids["agent"]}","environment_id":"{ids["env"]}","title":{bad}}}'
    _assert_400(_raw(http, "/v1/sessions", session), "title")
    _assert_400(_raw(http, f"/v1/sessions/{ids['session']}", f'{{"metadata":{{{bad}:"v"}}}}'), "metadata")
    # Written with a raw (unescaped) character instead, the body is not valid UTF-8 / JSON: 400 too.
    _assert_400(_raw(http, "/v1/agents", '{"name":"a\x00","model":"m"}'))
    # Nothing was stored on the way.
    listed = http.get(f"/v1/sessions/{ids['session']}/events").json()["data"]
    assert all(event["type"] != "user.message" for event in listed)


def test_an_escaped_backslash_is_ordinary_text(http: httpx.Client, ids: dict[str, str]) -> None:
    # "\\u0000" is the six characters \u0000, not a NUL: stored and returned as sent.
    body = '{"name":"e","description":"C:\\\\u0000\\\\ud800"}'
    created = _raw(http, "/v1/environments", body)
    assert created.status_code == 200, created.text
    assert created.json()["description"] == "C:\\u0000\\ud800"


def _nested_schema(levels: int) -> str:
    return '{"type":"object","properties":{"a":' * levels + "{}" + "}}" * levels


@pytest.mark.parametrize("levels", [450, 40])
def test_deeply_nested_tool_schemas(http: httpx.Client, levels: int) -> None:
    tool = f'{{"type":"custom","name":"t","description":"d","input_schema":{_nested_schema(levels)}}}'
    response = _raw(http, "/v1/agents", f'{{"name":"deep","model":"claude-sonnet-4-6","tools":[{tool}]}}')
    if levels * 2 <= 60:  # well inside the limit: an ordinary agent
        assert response.status_code == 200, response.text
        return
    _assert_400(response, "nested deeper than 64")


def test_deep_json_anywhere(http: httpx.Client, ids: dict[str, str]) -> None:
    deep = "[" * 100_000 + "]" * 100_000
    _assert_400(_raw(http, "/v1/agents", f'{{"name":{deep}}}'), "nested")
    _assert_400(_raw(http, f"/v1/sessions/{ids['session']}/events", f'{{"events":{deep}}}'), "nested")
    _assert_400(_raw(http, "/v1/messages", f'{{"model":"m","max_tokens":5,"messages":{deep}}}'), "nested")


def test_offline_messages_with_malformed_tools(http: httpx.Client) -> None:
    request = {"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}], "tools": [1]}
    _assert_400(http.post("/v1/messages", json=request), "tools.0")
    request["tools"] = [{"name": "t", "input_schema": {}}]
    request["messages"] = [{"role": "user", "content": [1]}]
    _assert_400(http.post("/v1/messages", json=request), "messages.0.content")
