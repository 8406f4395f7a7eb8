"""Sending events (validation of every client event type and rule) and listing a session's history."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import anthropic
import pytest

from app.events.types import EventRecord
from tests.support.factories import MODEL, make_session_async, text, user_message
from tests.support.streams import ids, read_turn
from tests.support.turns import InProcessWorker

SDK = anthropic.AsyncAnthropic


async def history(sdk: SDK, session_id: str, **params: Any) -> list[Any]:
    return [e async for e in sdk.beta.sessions.events.list(session_id, **params)]


async def send(sdk: SDK, session_id: str, *events: dict[str, Any]) -> list[Any]:
    sent = await sdk.beta.sessions.events.send(session_id, events=list(events))  # type: ignore[arg-type]
    assert sent.data is not None
    return list(sent.data)


async def waiting_session(sdk: SDK, producer: InProcessWorker, **params: Any) -> tuple[str, str, str]:
    """A session idle on requires_action: an `ask` tool use and a custom tool use await answers."""
    session = await make_session_async(sdk, **params)
    await send(sdk, session.id, user_message("use your tools"))
    await producer.start(session.id)
    uses = await producer.require_action(
        session.id,
        [
            {
                "type": "agent.tool_use",
                "name": "bash",
                "input": {"command": "ls"},
                "evaluated_permission": "ask",
            },
            {"type": "agent.custom_tool_use", "name": "get_weather", "input": {"city": "Paris"}},
        ],
    )
    return session.id, uses[0]["id"], uses[1]["id"]


# -- send ----------------------------------------------------------------------------------------


async def test_a_user_message_is_echoed_with_an_id_and_queued(manual_async_client: SDK) -> None:
    session = await make_session_async(manual_async_client)
    echoed = await send(manual_async_client, session.id, user_message("hello"), {"type": "user.interrupt"})
    assert [e.type for e in echoed] == ["user.message", "user.interrupt"]
    assert all(e.id.startswith("sevt_") for e in echoed)
    assert echoed[0].processed_at is None and echoed[1].processed_at is None
    assert echoed[0].content[0].text == "hello"


async def test_a_user_message_takes_its_place_in_the_log_when_processed(
    manual_async_client: SDK, producer: InProcessWorker
) -> None:
    sdk = manual_async_client
    session = await make_session_async(sdk)
    first = (await send(sdk, session.id, user_message("one")))[0]
    await producer.start(session.id)
    second = (await send(sdk, session.id, user_message("two")))[0]  # arrives mid-turn
    await producer.reply(session.id, "answer")
    await producer.idle(session.id)
    await producer.turn(session.id)

    events = await history(sdk, session.id)
    types = [e.type for e in events]
    assert types[:3] == ["session.status_running", "session.thread_status_running", "user.message"]
    by_id = {e.id: i for i, e in enumerate(events)}
    first_idle = types.index("session.status_idle")
    assert by_id[first.id] < first_idle < by_id[second.id], (
        "the log is in processing order, not arrival order"
    )
    assert all(e.processed_at is not None for e in events)


@pytest.mark.parametrize(
    ("events", "message"),
    [
        ([{"type": "user.message", "content": [{"type": "redacted"}]}], "redacted"),
        ([{"type": "user.message", "content": []}], "content"),
        ([{"type": "tool_confirmation", "tool_use_id": "sevt_x", "result": "allow"}], "type"),
        ([{"type": "system.message", "content": [text("x")]}, user_message()], "last"),
        ([user_message(), {"type": "system.message", "content": [{"type": "image"}]}], "content"),
        (
            [
                user_message(),
                {"type": "system.message", "content": [text("a")]},
                {"type": "system.message", "content": [text("b")]},
            ],
            "system.message",
        ),
        ([{"type": "user.interrupt"}, {"type": "system.message", "content": [text("x")]}], "follow"),
        ([{"type": "user.tool_confirmation", "tool_use_id": "sevt_x", "result": "allow"}], "waiting on"),
        ([{"type": "user.custom_tool_result", "custom_tool_use_id": "sevt_x"}], "waiting on"),
        ([{"type": "user.tool_result", "tool_use_id": "sevt_x"}], "self_hosted"),
        (
            [
                {
                    "type": "user.define_outcome",
                    "description": "d",
                    "rubric": {"type": "file", "file_id": "file_gone"},
                }
            ],
            "file_gone",
        ),
    ],
)
async def test_invalid_events_are_refused_and_nothing_is_written(
    manual_async_client: SDK, producer: InProcessWorker, events: list[dict[str, Any]], message: str
) -> None:
    session = await make_session_async(manual_async_client)
    with pytest.raises(anthropic.BadRequestError, match=message) as caught:
        await send(manual_async_client, session.id, user_message("valid, but in a refused request"), *events)
    assert caught.value.type == "invalid_request_error"
    assert (await manual_async_client.beta.sessions.retrieve(session.id)).status == "idle"
    started = await producer.start(session.id)
    assert "user.message" not in [e["type"] for e in started], "a refused request left an event behind"


async def test_an_empty_request_is_refused(manual_async_client: SDK) -> None:
    session = await make_session_async(manual_async_client)
    with pytest.raises(anthropic.BadRequestError, match="events"):
        await send(manual_async_client, session.id)


async def test_system_message_may_follow_a_user_message(manual_async_client: SDK) -> None:
    session = await make_session_async(manual_async_client)
    echoed = await send(
        manual_async_client,
        session.id,
        user_message(),
        {"type": "system.message", "content": [text("be brief")]},
    )
    assert [e.type for e in echoed] == ["user.message", "system.message"]


async def test_answers_must_match_a_pending_tool_use(
    manual_async_client: SDK, producer: InProcessWorker
) -> None:
    sdk = manual_async_client
    session_id, tool_use_id, custom_id = await waiting_session(sdk, producer)

    with pytest.raises(anthropic.BadRequestError, match="deny_message"):
        await send(
            sdk,
            session_id,
            {
                "type": "user.tool_confirmation",
                "tool_use_id": tool_use_id,
                "result": "allow",
                "deny_message": "no",
            },
        )
    with pytest.raises(anthropic.BadRequestError, match="self_hosted"):
        await send(sdk, session_id, {"type": "user.tool_result", "tool_use_id": tool_use_id})

    echoed = await send(
        sdk,
        session_id,
        {"type": "user.custom_tool_result", "custom_tool_use_id": custom_id, "content": [text("sunny")]},
    )
    assert echoed[0].processed_at is not None, "results are processed on receipt"
    last = (await history(sdk, session_id, order="desc", limit=1))[0]
    assert last.type == "session.status_idle"
    assert last.stop_reason.type == "requires_action" and last.stop_reason.event_ids == [tool_use_id]

    with pytest.raises(anthropic.BadRequestError, match="waiting on"):
        await send(sdk, session_id, {"type": "user.custom_tool_result", "custom_tool_use_id": custom_id})

    echoed = await send(
        sdk,
        session_id,
        {
            "type": "user.tool_confirmation",
            "tool_use_id": tool_use_id,
            "result": "deny",
            "deny_message": "not now",
        },
    )
    assert echoed[0].deny_message == "not now" and echoed[0].processed_at is not None
    listed = {e.id: e for e in await history(sdk, session_id)}
    assert listed[echoed[0].id].result == "deny"


async def test_tool_results_are_accepted_on_self_hosted_environments(
    manual_async_client: SDK, producer: InProcessWorker
) -> None:
    sdk = manual_async_client
    environment = await sdk.beta.environments.create(name="self-hosted", config={"type": "self_hosted"})
    agent = await sdk.beta.agents.create(name="a", model=MODEL)
    session_id, tool_use_id, _ = await waiting_session(
        sdk, producer, agent=agent.id, environment_id=environment.id
    )
    echoed = await send(
        sdk, session_id, {"type": "user.tool_result", "tool_use_id": tool_use_id, "content": [text("a.txt")]}
    )
    assert echoed[0].type == "user.tool_result" and echoed[0].processed_at is not None


async def test_sending_to_an_unknown_session_is_404(manual_async_client: SDK) -> None:
    with pytest.raises(anthropic.NotFoundError):
        await send(manual_async_client, "sesn_unknown", user_message())


# -- list ----------------------------------------------------------------------------------------


async def two_turns(sdk: SDK, producer: InProcessWorker) -> tuple[str, list[Any]]:
    session = await make_session_async(sdk)
    for turn in range(2):
        await send(sdk, session.id, user_message(f"question {turn}"))
        await producer.turn(session.id, replies=[f"answer {turn}"])
    return session.id, await history(sdk, session.id)


async def test_list_pages_through_the_history_in_either_order(
    manual_async_client: SDK, producer: InProcessWorker
) -> None:
    sdk = manual_async_client
    session_id, events = await two_turns(sdk, producer)
    assert len(events) > 10

    for order, expected in (("asc", events), ("desc", events[::-1])):
        page = await sdk.beta.sessions.events.list(session_id, order=order, limit=3)  # type: ignore[arg-type]
        walked = list(page.data)
        while page.next_page:
            page = await sdk.beta.sessions.events.list(session_id, order=order, limit=3, page=page.next_page)  # type: ignore[arg-type]
            walked += page.data
        assert ids(walked) == ids(expected)
    auto = [e async for e in sdk.beta.sessions.events.list(session_id, limit=4)]
    assert ids(auto) == ids(events)


async def test_list_filters_by_type_and_processing_time(
    manual_async_client: SDK, producer: InProcessWorker
) -> None:
    sdk = manual_async_client
    session_id, events = await two_turns(sdk, producer)

    picked = await history(sdk, session_id, types=["user.message", "session.status_idle"])
    assert [e.type for e in picked] == ["user.message", "session.status_idle"] * 2

    middle = events[len(events) // 2].processed_at
    assert middle is not None
    around = {
        "created_at_gte": [e for e in events if e.processed_at >= middle],
        "created_at_gt": [e for e in events if e.processed_at > middle],
        "created_at_lte": [e for e in events if e.processed_at <= middle],
        "created_at_lt": [e for e in events if e.processed_at < middle],
    }
    for param, expected in around.items():
        assert ids(await history(sdk, session_id, **{param: middle})) == ids(expected), param
    later = middle + timedelta(days=1)
    assert await history(sdk, session_id, created_at_gte=later.isoformat().replace("+00:00", "Z")) == []


async def test_list_refuses_bad_cursors_and_unknown_types(
    manual_async_client: SDK, producer: InProcessWorker
) -> None:
    sdk = manual_async_client
    session_id, _ = await two_turns(sdk, producer)
    with pytest.raises(anthropic.BadRequestError, match="cursor"):
        await sdk.beta.sessions.events.list(session_id, page="garbage")
    page = await sdk.beta.sessions.events.list(session_id, limit=2)
    assert page.next_page
    with pytest.raises(anthropic.BadRequestError, match="order"):
        await sdk.beta.sessions.events.list(session_id, limit=2, order="desc", page=page.next_page)
    with pytest.raises(anthropic.BadRequestError, match="types"):
        await sdk.beta.sessions.events.list(session_id, types=["agent.nonsense"])  # type: ignore[list-item]
    with pytest.raises(anthropic.NotFoundError):
        await sdk.beta.sessions.events.list("sesn_unknown")


async def test_deltas_reach_streams_that_asked_and_never_the_history(
    manual_async_client: SDK, producer: InProcessWorker
) -> None:
    sdk = manual_async_client
    session = await make_session_async(sdk)
    message_id = "sevt_preview" + session.id.removeprefix("sesn_")[:16]
    async with (
        await sdk.beta.sessions.events.stream(session.id, event_deltas=["agent.message"]) as with_deltas,
        await sdk.beta.sessions.events.stream(session.id) as without,
    ):
        await producer.wait_for_subscribers(session.id, 2)
        await send(sdk, session.id, user_message())
        await producer.start(session.id)
        await producer.preview(
            session.id,
            [
                {"type": "event_start", "event": {"type": "agent.message", "id": message_id}},
                {
                    "type": "event_delta",
                    "event_id": message_id,
                    "delta": {
                        "type": "content_delta",
                        "index": 0,
                        "content": {"type": "text", "text": "Hel"},
                    },
                },
            ],
        )
        message: EventRecord = {"id": message_id, "type": "agent.message", "content": [text("Hello")]}
        await producer.append(session.id, [message])
        await producer.idle(session.id)
        previewed = [e.type for e in await read_turn(with_deltas)]
        plain = [e.type for e in await read_turn(without)]

    assert previewed[previewed.index("event_start") :][:3] == ["event_start", "event_delta", "agent.message"]
    assert "event_start" not in plain and "event_delta" not in plain
    listed = [e.type for e in await history(sdk, session.id)]
    assert "agent.message" in listed
    assert not {"event_start", "event_delta"} & set(listed)


async def test_queued_events_are_listed_after_the_log_until_processed(
    manual_async_client: SDK, producer: InProcessWorker
) -> None:
    sdk = manual_async_client
    session_id, processed = await two_turns(sdk, producer)
    queued = await send(sdk, session_id, user_message("later one"), user_message("later two"))

    listed = await history(sdk, session_id)
    assert ids(listed) == ids(processed) + ids(queued)
    assert [e.processed_at for e in listed[-2:]] == [None, None]
    newest_first = await history(sdk, session_id, order="desc")
    assert ids(newest_first) == ids(queued[::-1]) + ids(processed[::-1])
    for order, expected in (("asc", listed), ("desc", newest_first)):
        page = await sdk.beta.sessions.events.list(session_id, order=order, limit=2)  # type: ignore[arg-type]
        walked = list(page.data)
        while page.next_page:
            page = await sdk.beta.sessions.events.list(session_id, order=order, limit=2, page=page.next_page)  # type: ignore[arg-type]
            walked += page.data
        assert ids(walked) == ids(expected), order
    since = processed[0].processed_at
    assert ids(await history(sdk, session_id, created_at_gte=since)) == ids(processed)

    await producer.turn(session_id)  # the agent takes them: they move to their place in the log
    after = await history(sdk, session_id)
    assert all(e.processed_at is not None for e in after)
    assert set(ids(queued)) <= set(ids(after)) and len(after) > len(listed)
