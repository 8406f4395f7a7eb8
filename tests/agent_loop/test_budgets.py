"""Session budgets through the SDK: a turn stops with `budget_reached` once the list cost reaches
the ceiling (the crossing request completes), only settle events are accepted meanwhile, and
raising the budget resumes the turn; the update rules answer 400 with their reasons."""

from __future__ import annotations

import json
from typing import Any

import anthropic
import pytest

from tests.support.factories import MODEL
from tests.support.loop import (
    TOOLSET,
    idles,
    log,
    message,
    of_type,
    send,
    stop_reason,
    texts,
    wait_idle,
)

SDK = anthropic.AsyncAnthropic


def budget(cents: str) -> dict[str, Any]:
    return {"type": "limit", "max_list_cost": {"amount": cents, "currency": "USD"}}


async def budgeted_session(client: SDK, cents: str | None) -> str:
    agent = await client.beta.agents.create(name="spender", model=MODEL, tools=[TOOLSET])  # type: ignore[list-item]
    environment = await client.beta.environments.create(name=f"env-{agent.id[-8:]}")
    extra: dict[str, Any] = {"budget": budget(cents)} if cents is not None else {}
    session = await client.beta.sessions.create(agent=agent.id, environment_id=environment.id, **extra)
    return session.id


def message_error(exc: pytest.ExceptionInfo[anthropic.BadRequestError]) -> str:
    return str(exc.value.body["error"]["message"])  # type: ignore[index]


async def test_a_budget_stops_a_turn_and_raising_it_resumes(loop: SDK) -> None:
    session_id = await budgeted_session(loop, "1")
    assert (await loop.beta.sessions.retrieve(session_id)).budget.model_dump() == budget("1")  # type: ignore[union-attr]
    # One response of ~1,000 output tokens (1.5 cents at sonnet list prices) with a tool call.
    prompt = "/long 4000\n/tool bash " + json.dumps({"command": "echo after-the-budget"})
    await send(loop, session_id, message(prompt))
    events = await wait_idle(loop, session_id)

    assert stop_reason(idles(events)[0]) == {"type": "budget_reached"}
    assert len(of_type(events, "span.model_request_end")) == 1  # the crossing request completed
    assert len(of_type(events, "agent.tool_result")) == 1  # its tool call ran too
    thread_idle = of_type(events, "session.thread_status_idle")[-1]
    assert thread_idle.stop_reason.type == "budget_reached"
    session = await loop.beta.sessions.retrieve(session_id)
    assert session.status == "idle" and int(session.usage.list_cost.amount) >= 1  # type: ignore[union-attr]

    with pytest.raises(anthropic.BadRequestError) as exc:
        await send(loop, session_id, message("more"))
    assert "budget_reached" in message_error(exc)
    with pytest.raises(anthropic.BadRequestError) as exc:
        await loop.beta.sessions.update(session_id, budget=budget("1"))  # type: ignore[arg-type]
    assert "budget_not_raised" in message_error(exc)

    updated = await loop.beta.sessions.update(session_id, budget=budget("1000"))  # type: ignore[arg-type]
    assert updated.budget is not None and updated.budget.max_list_cost.amount == "1000"
    events = await wait_idle(loop, session_id, 2)
    assert stop_reason(idles(events)[-1]) == {"type": "end_turn"}
    assert texts(events)[-1] == "Tool results:\nafter-the-budget"
    changed = of_type(events, "session.updated")
    assert [c.budget.model_dump() for c in changed] == [budget("1000")]


async def test_removing_the_budget_resumes_and_is_for_good(loop: SDK) -> None:
    session_id = await budgeted_session(loop, "1")
    await send(loop, session_id, message("/long 4000\n/tool bash " + json.dumps({"command": "echo x"})))
    events = await wait_idle(loop, session_id)
    assert stop_reason(idles(events)[0]) == {"type": "budget_reached"}

    removed = await loop.beta.sessions.update(session_id, budget=None)
    assert removed.budget is None
    events = await wait_idle(loop, session_id, 2)
    assert stop_reason(idles(events)[-1]) == {"type": "end_turn"}
    with pytest.raises(anthropic.BadRequestError) as exc:
        await loop.beta.sessions.update(session_id, budget=budget("5000"))  # type: ignore[arg-type]
    assert "budget_create_only" in message_error(exc)
    await send(loop, session_id, message("/say unbounded now"))
    assert texts(await wait_idle(loop, session_id, 3))[-1] == "unbounded now"


async def test_a_budget_that_is_not_reached_changes_nothing(loop: SDK) -> None:
    session_id = await budgeted_session(loop, "2500")
    await send(loop, session_id, message("/say cheap"))
    events = await wait_idle(loop, session_id)
    assert stop_reason(idles(events)[0]) == {"type": "end_turn"}
    assert [e.type for e in await log(loop, session_id)].count("session.status_idle") == 1


@pytest.mark.parametrize(
    "bad",
    [
        {"type": "tokens", "max_list_cost": {"amount": "10", "currency": "USD"}},
        {"type": "limit", "max_list_cost": {"amount": "ten", "currency": "USD"}},
        {"type": "limit", "max_list_cost": {"amount": "010", "currency": "USD"}},
        {"type": "limit", "max_list_cost": {"amount": "10", "currency": "EUR"}},
        {"type": "limit"},
    ],
)
async def test_bad_budgets_are_400(loop: SDK, bad: dict[str, Any]) -> None:
    agent = await loop.beta.agents.create(name="b", model=MODEL, tools=[TOOLSET])  # type: ignore[list-item]
    environment = await loop.beta.environments.create(name=f"env-{agent.id[-8:]}")
    with pytest.raises(anthropic.BadRequestError) as exc:
        await loop.beta.sessions.create(agent=agent.id, environment_id=environment.id, budget=bad)  # type: ignore[arg-type]
    assert "budget" in message_error(exc)


async def test_a_budget_cannot_be_added_later(loop: SDK) -> None:
    session_id = await budgeted_session(loop, None)
    with pytest.raises(anthropic.BadRequestError) as exc:
        await loop.beta.sessions.update(session_id, budget=budget("100"))  # type: ignore[arg-type]
    assert "budget_create_only" in message_error(exc)
    assert (await loop.beta.sessions.update(session_id, budget=None)).budget is None  # nothing to remove
