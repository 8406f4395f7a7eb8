"""A session in the console, in Chromium: a live turn of the offline model appears as it happens
(the streamed preview, the tool call with its input and output, the spans with timing and
tokens, usage), a tool confirmation is answered, and a running turn is interrupted."""

from __future__ import annotations

import json
import uuid
from typing import Any

import anthropic
import pytest
from playwright.sync_api import Page, expect

from tests.console.conftest import ARTIFACTS, sign_in
from tests.support.factories import user_message
from tests.support.server import ServerThread

pytestmark = pytest.mark.browser

TOOLSET = {"type": "agent_toolset_20260401"}
ASKING_TOOLSET = {**TOOLSET, "default_config": {"permission_policy": {"type": "always_ask"}}}


def new_session(sdk: anthropic.Anthropic, tools: list[Any], title: str) -> str:
    env = sdk.beta.environments.create(name=f"console-{uuid.uuid4().hex[:6]}")
    name = f"console-{uuid.uuid4().hex[:6]}"
    agent = sdk.beta.agents.create(name=name, model="claude-sonnet-4-6", tools=tools)
    return sdk.beta.sessions.create(agent=agent.id, environment_id=env.id, title=title).id


def send(page: Page, text: str) -> None:
    page.fill("#message", text)
    page.click("#send")


def status(page: Page, value: str) -> None:
    expect(page.locator(f"#session-status [data-status={value}]")).to_be_visible()


def tool_call(command: str) -> str:
    return "/tool bash " + json.dumps({"command": command})


def test_a_live_turn_appears_as_it_happens(
    page: Page, console_server: ServerThread, sdk: anthropic.Anthropic
) -> None:
    session_id = new_session(sdk, [TOOLSET], "live turn")
    sign_in(page, console_server.url, route=f"#/sessions/{session_id}")
    expect(page.locator("#live")).to_have_text("live")
    expect(page.locator("#no-events")).to_be_visible()

    # The offline model spreads /sleep over its text deltas: the preview is open for seconds.
    say = "Let me look at the workspace, then report what the shell says about it."
    send(page, f"/sleep 6000\n/say {say}\n{tool_call('echo console-$((6*7))')}")
    preview = page.locator(".ev.agent.streaming")
    expect(preview).to_be_visible()
    status(page, "running")
    expect(page.locator(".ev.span.open")).to_have_count(1)  # the model request is under way

    tool = page.locator(".ev.tool[data-tool=bash]")
    expect(tool.locator("pre.input")).to_contain_text("echo console-$((6*7))")
    expect(tool.locator("pre.output")).to_contain_text("console-42")
    expect(page.locator(".ev.agent").first.locator(".ev-body")).to_have_text(say)
    expect(page.locator(".ev.agent").last).to_contain_text("Tool results:")
    status(page, "idle")
    expect(page.locator(".ev.agent.streaming")).to_have_count(0)

    # Two model requests (the call, then the answer to its result), each with timing and tokens.
    spans = page.locator(".ev.span")
    expect(spans).to_have_count(2)
    expect(page.locator(".ev.span.open")).to_have_count(0)
    for i in range(2):
        assert int(spans.nth(i).locator(".elapsed").get_attribute("data-ms") or "-1") >= 0
        expect(spans.nth(i).locator(".tokens")).to_contain_text("in ")
    expect(page.locator("#usage-requests")).to_have_text("2")
    usage = sdk.beta.sessions.retrieve(session_id).usage
    assert usage is not None and usage.output_tokens and usage.cache_creation is not None
    written = (usage.cache_creation.ephemeral_5m_input_tokens or 0) + (
        usage.cache_creation.ephemeral_1h_input_tokens or 0
    )
    expect(page.locator("#usage-output")).to_have_text(f"{usage.output_tokens:,}")
    expect(page.locator("#usage-input")).to_have_text(f"{usage.input_tokens or 0:,}")
    expect(page.locator("#usage-cache-read")).to_have_text(f"{usage.cache_read_input_tokens or 0:,}")
    expect(page.locator("#usage-cache-write")).to_have_text(f"{written:,}")

    # Every event of the log is shown once: in its own card, in log order, or inside the card of
    # the event it completes (a tool result in its call's card, a span's end in its start).
    listed = [e.id for e in sdk.beta.sessions.events.list(session_id)]
    cards = page.eval_on_selector_all(
        "#timeline .ev[data-id]", "nodes => nodes.map(n => [n.dataset.id, n.dataset.merged || ''])"
    )
    own = [card for card, _ in cards]
    merged = [i for _, ids in cards for i in ids.split()]
    assert own == [i for i in listed if i in own]
    assert sorted(own + merged) == sorted(listed)
    expect(page.locator(".ev.marker.usage").last).to_contain_text(f"out {usage.output_tokens:,}")
    page.set_viewport_size({"width": 1440, "height": 1280})
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(ARTIFACTS / "console-session.png"))

    # A reload rebuilds the same timeline from the history.
    page.reload()
    expect(page.locator("#timeline .ev.tool pre.output")).to_contain_text("console-42")
    expect(page.locator(".ev.span")).to_have_count(2)


def test_a_tool_confirmation_is_answered_allow_then_deny(
    page: Page, console_server: ServerThread, sdk: anthropic.Anthropic
) -> None:
    session_id = new_session(sdk, [ASKING_TOOLSET], "confirmations")
    sign_in(page, console_server.url, route=f"#/sessions/{session_id}")

    send(page, tool_call("echo allowed-$((1+1))"))
    asking = page.locator(".ev.tool .confirm")
    expect(asking).to_be_visible()
    expect(page.locator(".ev.tool .badge.ask")).to_have_text("needs confirmation")
    expect(page.locator("#timeline")).to_contain_text("Waiting for you")
    status(page, "idle")
    asking.locator("button[data-action=allow]").click()
    expect(page.locator(".ev.tool pre.output")).to_contain_text("allowed-2")
    expect(page.locator(".ev.tool .confirm")).to_have_count(0)
    expect(page.locator("#timeline")).to_contain_text("Allowed by user")
    expect(page.locator(".ev.agent").last).to_contain_text("Tool results:")

    send(page, tool_call("echo never-ran"))
    second = page.locator(".ev.tool").nth(1)
    expect(second.locator(".confirm")).to_be_visible()
    second.locator("input[name=deny-message]").fill("not on this machine")
    second.locator("button[data-action=deny]").click()
    expect(page.locator("#timeline")).to_contain_text("Denied: not on this machine by user")
    expect(second).to_have_class("ev tool failed")
    status(page, "idle")

    confirmations = [
        (e.result, getattr(e, "deny_message", None))
        for e in sdk.beta.sessions.events.list(session_id)
        if e.type == "user.tool_confirmation"
    ]
    assert confirmations == [("allow", None), ("deny", "not on this machine")]
    outputs = [e for e in sdk.beta.sessions.events.list(session_id) if e.type == "agent.tool_result"]
    assert "never-ran" not in json.dumps([o.model_dump(mode="json") for o in outputs])


def test_a_running_turn_is_interrupted(
    page: Page, console_server: ServerThread, sdk: anthropic.Anthropic
) -> None:
    session_id = new_session(sdk, [TOOLSET], "interrupted")
    sign_in(page, console_server.url, route=f"#/sessions/{session_id}")
    expect(page.locator("#interrupt")).to_be_disabled()  # nothing to interrupt while idle

    send(page, "/sleep 60000\n/say This answer is much too slow and will be interrupted by the user.")
    expect(page.locator(".ev.agent.streaming")).to_be_visible()
    page.click("#interrupt")
    expect(page.locator("#timeline")).to_contain_text("Interrupted")
    status(page, "idle")
    expect(page.locator(".ev.agent.streaming")).to_have_count(0)  # the cut preview is closed
    types = [e.type for e in sdk.beta.sessions.events.list(session_id)]
    assert "user.interrupt" in types and types[-1] == "session.status_idle"


def test_a_custom_tool_result_is_sent_and_errors_are_shown(
    page: Page, console_server: ServerThread, sdk: anthropic.Anthropic
) -> None:
    lookup = {
        "type": "custom",
        "name": "lookup",
        "description": "Look a word up.",
        "input_schema": {"type": "object", "properties": {"word": {"type": "string"}}},
    }
    session_id = new_session(sdk, [lookup], "custom tool")
    sign_in(page, console_server.url, route=f"#/sessions/{session_id}")

    send(page, "/tool lookup " + json.dumps({"word": "console"}))
    card = page.locator(".ev.tool[data-tool=lookup]")
    expect(card).to_contain_text("Custom tool: lookup")
    card.locator("textarea[name=tool-result]").fill("a desk of dials")
    card.locator("button[data-action=answer]").click()
    expect(card.locator("pre.output")).to_have_text("a desk of dials")
    expect(page.locator(".ev.agent").last).to_contain_text("Tool results:\na desk of dials")
    status(page, "idle")

    # A model error is shown with its type and retry status, and the turn ends.
    send(page, "/fault invalid")
    error = page.locator(".ev.error")
    expect(error).to_contain_text("model_request_failed_error (exhausted)")
    expect(error).to_contain_text("Invalid request (offline fault injection)")
    status(page, "idle")
    results = [e for e in sdk.beta.sessions.events.list(session_id) if e.type == "user.custom_tool_result"]
    assert [r.content[0].text for r in results if r.content] == ["a desk of dials"]  # type: ignore[union-attr]


def test_a_session_is_started_from_an_agent_page(
    page: Page, console_server: ServerThread, sdk: anthropic.Anthropic
) -> None:
    env = sdk.beta.environments.create(name=f"start-{uuid.uuid4().hex[:6]}")
    agent = sdk.beta.agents.create(name=f"start-{uuid.uuid4().hex[:6]}", model="claude-sonnet-4-6")
    sign_in(page, console_server.url, route=f"#/agents/{agent.id}")
    page.select_option("#new-session select[name=environment]", env.id)
    page.fill("#new-session input[name=title]", "started in the console")
    page.click("#new-session button[type=submit]")
    expect(page.locator("h1")).to_have_text("started in the console")
    session_id = page.url.rsplit("/", 1)[-1]
    session = sdk.beta.sessions.retrieve(session_id)
    assert session.agent.id == agent.id and session.environment_id == env.id
    send(page, "hello from the console")
    expect(page.locator(".ev.agent").last).to_contain_text('Offline model reply to: "hello from the console"')


def test_watching_in_the_console_leaves_a_turn_to_the_client_that_sent(
    page: Page, console_server: ServerThread, sdk: anthropic.Anthropic
) -> None:
    """The console's stream is an observer's: a turn it showed is still replayed to a client that
    sends and then opens a stream without `Last-Event-ID` (the SDK examples' pattern)."""
    session_id = new_session(sdk, [], "watched")
    with page.expect_request(lambda r: "/events/stream" in r.url) as opened:
        sign_in(page, console_server.url, route=f"#/sessions/{session_id}")
    assert opened.value.all_headers().get("x-mas-observer") == "1"
    expect(page.locator("#live")).to_have_text("live")

    watched = [user_message("watched in the console")]
    sent = sdk.beta.sessions.events.send(session_id, events=watched)  # type: ignore[arg-type]
    assert sent.data is not None
    expect(page.locator(".ev.agent").last).to_contain_text('reply to: "watched in the console"')
    expect(page.locator(".ev[data-type='session.status_idle']")).to_have_count(1)

    own = [user_message("sent by a script")]
    sdk.beta.sessions.events.send(session_id, events=own)  # type: ignore[arg-type]
    seen: list[str] = []
    with sdk.beta.sessions.events.stream(session_id) as stream:
        for event in stream:
            seen.append(getattr(event, "id", ""))
            if event.type == "session.status_idle":
                break
    assert sent.data[0].id in seen, "the console's stream took the watched turn's replay away"
