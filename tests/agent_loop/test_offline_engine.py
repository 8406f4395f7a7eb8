"""The offline model's deterministic behaviour, without HTTP."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from app.offline.engine import OfflineEngine, OfflineError
from app.offline.messages import OfflineMessage
from app.offline.sse import message_frames
from tests.agent_loop.conftest import WEATHER_TOOL, body, user


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def respond(engine: OfflineEngine, request: dict[str, Any]) -> OfflineMessage:
    return engine.respond(request).message


def tool_round(text: str) -> list[dict[str, Any]]:
    """A user prompt, the assistant's tool call, and its tool result."""
    call = {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}}
    result = {"type": "tool_result", "tool_use_id": "toolu_1", "content": "sunny, 21C"}
    return [user(text), {"role": "assistant", "content": [call]}, {"role": "user", "content": [result]}]


def test_plain_prompt_gets_a_quoting_reply_with_deterministic_usage() -> None:
    message = respond(OfflineEngine(), body(user("hello there")))
    assert message["content"] == [{"type": "text", "text": 'Offline model reply to: "hello there"'}]
    assert message["stop_reason"] == "end_turn"
    assert message["usage"]["input_tokens"] == 3  # ceil(11 / 4)
    assert message["usage"]["output_tokens"] == 10  # ceil(37 / 4)
    assert message["id"] == respond(OfflineEngine(), body(user("hello there")))["id"]


def test_tool_lines_become_parallel_tool_uses_with_ids_unique_per_request() -> None:
    prompt = '/tool get_weather {"city": "Paris"}\n/tool get_weather {"city": "Oslo"}'
    message = respond(OfflineEngine(), body(user(prompt), tools=[WEATHER_TOOL]))
    calls = message["content"]
    assert [c["input"] for c in calls] == [{"city": "Paris"}, {"city": "Oslo"}]
    assert message["stop_reason"] == "tool_use"
    assert calls[0]["id"].startswith("toolu_offline_") and calls[0]["id"] != calls[1]["id"]
    other = respond(OfflineEngine(), body(user(prompt + "\nagain"), tools=[WEATHER_TOOL]))
    assert other["content"][0]["id"] != calls[0]["id"]


def test_say_text_comes_before_the_tool_call() -> None:
    prompt = "/say Checking the weather.\n/tool get_weather"
    content = respond(OfflineEngine(), body(user(prompt), tools=[WEATHER_TOOL]))["content"]
    assert [block["type"] for block in content] == ["text", "tool_use"]
    assert content[0]["text"] == "Checking the weather." and content[1]["input"] == {}


def test_unknown_tool_is_explained_instead_of_called() -> None:
    message = respond(OfflineEngine(), body(user("/tool launch_rocket {}"), tools=[WEATHER_TOOL]))
    assert message["stop_reason"] == "end_turn"
    text = message["content"][0]["text"]
    assert '"launch_rocket"' in text and "get_weather" in text


def test_malformed_directive_is_explained() -> None:
    message = respond(OfflineEngine(), body(user("/tool get_weather {not json"), tools=[WEATHER_TOOL]))
    assert "not valid JSON" in message["content"][0]["text"]


def test_tool_results_are_echoed_back() -> None:
    messages = tool_round("weather?")
    messages[-1]["content"].append(
        {
            "type": "tool_result",
            "tool_use_id": "t2",
            "content": [{"type": "text", "text": "boom"}],
            "is_error": True,
        }
    )
    message = respond(OfflineEngine(), body(*messages, tools=[WEATHER_TOOL]))
    assert message["content"][0]["text"] == "Tool results:\nsunny, 21C\nerror: boom"
    assert message["stop_reason"] == "end_turn"


def test_think_adds_a_signed_thinking_block_only_when_thinking_is_enabled() -> None:
    thinking = {"type": "enabled", "budget_tokens": 2048}
    content = respond(OfflineEngine(), body(user("/think\nwhy?"), thinking=thinking))["content"]
    assert content[0]["type"] == "thinking" and content[0]["signature"]
    assert content[1]["text"] == 'Offline model reply to: "why?"'
    plain = respond(OfflineEngine(), body(user("/think\nwhy?")))["content"]
    assert [block["type"] for block in plain] == ["text"]


def test_long_reply_has_the_requested_size_and_respects_max_tokens() -> None:
    message = respond(OfflineEngine(), {**body(user("/long 5000")), "max_tokens": 4096})
    assert len(message["content"][0]["text"]) == 5000
    capped = respond(OfflineEngine(), {**body(user("/long 5000")), "max_tokens": 100})
    assert capped["stop_reason"] == "max_tokens" and len(capped["content"][0]["text"]) == 400


def test_summarize_request_summarises_the_history() -> None:
    history = [*tool_round("remember the code word: PELICAN"), {"role": "assistant", "content": "ok"}]
    message = respond(OfflineEngine(), body(*history, user("Please summarize this conversation.")))
    text = message["content"][0]["text"]
    assert text.startswith("Summary of 4 messages: user: remember the code word: PELICAN")
    assert "[tool_use get_weather]" in text and "[tool_result sunny, 21C]" in text


def test_summary_instruction_appended_to_tool_results_wins_over_directives() -> None:
    ask = {"type": "text", "text": "Summarize this conversation so far. Reply with the summary only."}
    messages = tool_round("/tool get_weather {}")
    messages[-1]["content"].append(ask)
    message = respond(OfflineEngine(), body(*messages, tools=[WEATHER_TOOL]))
    assert message["stop_reason"] == "end_turn"
    assert message["content"][0]["text"].startswith("Summary of 3 messages: user: /tool get_weather {}")
    assert message["content"][0]["text"].endswith("user: [tool_result sunny, 21C]")


def test_a_summary_never_replays_the_directives_it_quotes() -> None:
    history: list[dict[str, object]] = [
        user("/tool get_weather {}\n/fault invalid"),
        {"role": "assistant", "content": "ok"},
    ]
    message = respond(OfflineEngine(), body(*history, user("summarize the conversation")))
    summary = message["content"][0]["text"]
    assert "\n" not in summary
    later = respond(OfflineEngine(), body(user(summary)))
    assert later["content"][0]["text"].startswith("Offline model reply to:")


@pytest.mark.parametrize(
    ("kind", "status", "error_type"),
    [
        ("overloaded", 529, "overloaded_error"),
        ("rate_limited", 429, "rate_limit_error"),
        ("server_error", 500, "api_error"),
    ],
)
def test_fault_fails_the_first_n_attempts_of_a_request(kind: str, status: int, error_type: str) -> None:
    engine = OfflineEngine()
    request = body(user(f"/fault {kind} 2\nhi"))
    for _ in range(2):
        with pytest.raises(OfflineError) as failure:
            engine.respond(request)
        assert (failure.value.status, failure.value.error_type) == (status, error_type)
    assert respond(engine, request)["content"][0]["text"] == 'Offline model reply to: "hi"'


def test_fault_counts_are_per_request_and_stream_flag_agnostic() -> None:
    engine = OfflineEngine()
    with pytest.raises(OfflineError):
        engine.respond(body(user("/fault overloaded\nhi")))
    assert engine.respond({**body(user("/fault overloaded\nhi")), "stream": True}).stream_fault is None
    with pytest.raises(OfflineError):
        engine.respond(body(user("/fault overloaded\nsomething else")))


def test_invalid_fault_always_fails_and_rate_limit_carries_retry_after() -> None:
    engine = OfflineEngine()
    for _ in range(3):
        with pytest.raises(OfflineError) as failure:
            engine.respond(body(user("/fault invalid")))
        assert failure.value.status == 400
    with pytest.raises(OfflineError) as limited:
        engine.respond(body(user("/fault rate_limited 1 7")))
    assert limited.value.retry_after == 7


def test_stream_faults_are_left_to_the_http_layer() -> None:
    engine = OfflineEngine()
    assert engine.respond(body(user("/fault cut"))).stream_fault == "cut"
    assert engine.respond(body(user("/fault cut"))).stream_fault is None
    assert engine.respond(body(user("/fault stream_overloaded always"))).stream_fault == "stream_overloaded"


def test_sleep_is_reported_for_the_http_layer() -> None:
    assert OfflineEngine().respond(body(user("/sleep 250\nslowly"))).sleep_ms == 250


def test_prompt_cache_reads_a_repeated_prefix() -> None:
    engine = OfflineEngine(clock=FakeClock())
    system = [{"type": "text", "text": "s" * 400}]
    first = respond(engine, body(user("a" * 40), system=system, cache_control={"type": "ephemeral"}))["usage"]
    assert first["cache_creation_input_tokens"] == 110
    assert first["cache_read_input_tokens"] == first["input_tokens"] == 0
    follow_up: list[dict[str, object]] = [
        user("a" * 40),
        {"role": "assistant", "content": "b" * 80},
        user("c" * 40),
    ]
    second = respond(engine, body(*follow_up, system=system, cache_control={"type": "ephemeral"}))["usage"]
    assert second["cache_read_input_tokens"] == 110
    assert second["cache_creation_input_tokens"] == 30
    assert second["cache_creation"] == {"ephemeral_5m_input_tokens": 30, "ephemeral_1h_input_tokens": 0}


def test_prompt_cache_splits_ttls_and_expires() -> None:
    clock = FakeClock()
    engine = OfflineEngine(clock=clock)
    system = [{"type": "text", "text": "s" * 400, "cache_control": {"type": "ephemeral", "ttl": "1h"}}]
    request = body(user("a" * 40), system=system, cache_control={"type": "ephemeral"})
    usage = respond(engine, request)["usage"]["cache_creation"]
    assert usage == {"ephemeral_5m_input_tokens": 10, "ephemeral_1h_input_tokens": 100}
    clock.now += 600  # the 5m entry is gone, the 1h system prefix is still there
    again = respond(engine, request)["usage"]
    assert again["cache_read_input_tokens"] == 100 and again["cache_creation_input_tokens"] == 10


def test_without_breakpoints_everything_is_plain_input() -> None:
    engine = OfflineEngine()
    for _ in range(2):
        usage = respond(engine, body(user("x" * 400)))["usage"]
        assert (usage["input_tokens"], usage["cache_read_input_tokens"]) == (100, 0)


def test_count_tokens_covers_tools_system_and_messages() -> None:
    request = body(user("x" * 40), system="y" * 40, tools=[WEATHER_TOOL])
    tool_tokens = -(-len(json.dumps(WEATHER_TOOL, sort_keys=True, separators=(",", ":"))) // 4)
    assert OfflineEngine().count_tokens(request) == 20 + tool_tokens


@pytest.mark.parametrize(
    ("request_body", "fragment"),
    [
        ({"max_tokens": 10, "messages": [user("hi")]}, "model"),
        ({"model": "m", "messages": [user("hi")]}, "max_tokens"),
        ({"model": "m", "max_tokens": 10, "messages": []}, "messages"),
        ({"model": "m", "max_tokens": 10, "messages": [{"role": "system", "content": "x"}]}, "role"),
    ],
)
def test_invalid_requests_are_rejected(request_body: dict[str, Any], fragment: str) -> None:
    with pytest.raises(OfflineError) as failure:
        OfflineEngine().respond(request_body)
    assert failure.value.status == 400 and failure.value.error_type == "invalid_request_error"
    assert fragment in failure.value.message


def _write_script(tmp_path: Path, script: object) -> Path:
    path = tmp_path / "script.json"
    path.write_text(json.dumps(script))
    return path


SCRIPT_TURNS = [
    [
        {"content": [{"type": "tool_use", "name": "get_weather", "input": {"city": "Rome"}}]},
        {"content": [{"type": "text", "text": "Rome is sunny."}]},
    ],
    [{"content": [{"type": "text", "text": "Second turn."}], "stop_reason": "end_turn"}],
]


def test_global_script_plays_turn_by_turn_and_survives_tool_results(tmp_path: Path) -> None:
    engine = OfflineEngine(script_path=_write_script(tmp_path, SCRIPT_TURNS))
    first = respond(engine, body(user("go"), tools=[WEATHER_TOOL]))
    assert first["stop_reason"] == "tool_use" and first["content"][0]["input"] == {"city": "Rome"}
    messages = tool_round("go")
    assert respond(engine, body(*messages))["content"][0]["text"] == "Rome is sunny."
    after = [*messages, {"role": "assistant", "content": "Rome is sunny."}, user("next")]
    assert respond(engine, body(*after))["content"][0]["text"] == "Second turn."
    beyond = [*after, {"role": "assistant", "content": "Second turn."}, user("third")]
    assert respond(engine, body(*beyond))["content"][0]["text"] == 'Offline model reply to: "third"'


def test_agent_script_in_the_system_prompt_wins_over_the_global_one(tmp_path: Path) -> None:
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    engine = OfflineEngine(script_path=_write_script(tmp_path, SCRIPT_TURNS), script_dir=scripts)
    (scripts / "agent.json").write_text(
        json.dumps([[{"content": [{"type": "text", "text": "agent script"}]}]])
    )
    system = "You are helpful.\n#offline-script: agent.json"
    assert respond(engine, body(user("go"), system=system))["content"][0]["text"] == "agent script"


@pytest.mark.parametrize("name", ["../global.json", "/etc/passwd"])
def test_agent_scripts_are_read_only_from_the_script_directory(tmp_path: Path, name: str) -> None:
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    _write_script(tmp_path, SCRIPT_TURNS)
    system = f"#offline-script: {name}"
    for engine in (OfflineEngine(), OfflineEngine(script_dir=scripts)):
        with pytest.raises(OfflineError) as refused:
            engine.respond(body(user("go"), system=system))
        assert refused.value.status == 400 and "MAS_OFFLINE_SCRIPT_DIR" in refused.value.message


def test_inline_script_rules_match_the_user_text() -> None:
    deploying = [{"content": [{"type": "text", "text": "Deploying."}]}]
    script = {"rules": [{"match": "(?i)deploy", "responses": deploying}]}
    system = [{"type": "text", "text": "#offline-script-inline: " + json.dumps(script)}]
    engine = OfflineEngine()

    def reply(text: str) -> str:
        return str(respond(engine, body(user(text), system=system))["content"][0]["text"])

    assert reply("Please DEPLOY it") == "Deploying."
    assert reply("hello").startswith("Offline model")


@pytest.mark.parametrize("script", ["{not json", '[[{"content": []}]]', '{"turns": [], "extra": 1}'])
def test_broken_script_is_an_invalid_request(tmp_path: Path, script: str) -> None:
    path = tmp_path / "broken.json"
    path.write_text(script)
    with pytest.raises(OfflineError) as failure:
        OfflineEngine(script_path=path).respond(body(user("go")))
    assert failure.value.status == 400 and "offline script" in failure.value.message


def test_missing_script_file_is_an_invalid_request(tmp_path: Path) -> None:
    with pytest.raises(OfflineError, match="cannot read offline script"):
        OfflineEngine(script_path=tmp_path / "nope.json").respond(body(user("go")))


def test_sse_frames_follow_the_api_order() -> None:
    request = body(user("/think\n/tool get_weather {}"), tools=[WEATHER_TOOL], thinking={"type": "adaptive"})
    frames = list(message_frames(respond(OfflineEngine(), request)))
    names = [frame.event for frame in frames]
    assert names[:3] == ["message_start", "ping", "content_block_start"]
    assert names[-2:] == ["message_delta", "message_stop"]
    delta_types = [frame.data["delta"]["type"] for frame in frames if frame.is_delta]
    assert delta_types[-1] == "input_json_delta" and "signature_delta" in delta_types
    assert frames[0].data["message"]["content"] == []
    assert frames[-2].data["delta"]["stop_reason"] == "tool_use"
