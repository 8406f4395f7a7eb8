"""Outcomes through the SDK: `user.define_outcome` starts work at once; after each iteration a
grader (the offline model, following the rubric's `/grade` or `/require` line) judges it with
`span.outcome_evaluation_start/_ongoing/_end`; `needs_revision` makes the agent iterate again,
`satisfied`/`failed` end the turn, `max_iterations_reached` gets one acknowledgment turn, an
interrupt ends the outcome `interrupted`; `session.outcome_evaluations` shows where it stands."""

from __future__ import annotations

import json
from typing import Any

import anthropic
import pytest

from app.agent_loop import grader
from app.offline import grading
from app.offline.engine import validate
from app.offline.messages import MessagesBody
from tests.support.loop import (
    TOOLSET,
    assert_log_sane,
    idles,
    log,
    new_session,
    of_type,
    send,
    stop_reason,
    texts,
    types,
    wait_for,
    wait_idle,
)

SDK = anthropic.AsyncAnthropic
SPANS = ("span.outcome_evaluation_start", "span.outcome_evaluation_ongoing", "span.outcome_evaluation_end")


def outcome(description: str, rubric: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": "user.define_outcome",
        "description": description,
        "rubric": {"type": "text", "content": rubric},
        **extra,
    }


def spans(events: list[Any]) -> list[tuple[str, int, str | None]]:
    """(type, iteration, result) of each outcome span event, in order."""
    return [(e.type, e.iteration, getattr(e, "result", None)) for e in events if e.type in SPANS]


def without_heartbeats(found: list[tuple[str, int, str | None]]) -> list[tuple[str, int, str | None]]:
    return [s for s in found if s[0] != "span.outcome_evaluation_ongoing"]


async def evaluations(client: SDK, session_id: str) -> list[Any]:
    return list((await client.beta.sessions.retrieve(session_id)).outcome_evaluations)


async def test_an_outcome_that_needs_one_revision_then_passes(loop: SDK) -> None:
    session_id = await new_session(loop)
    work = "/tool bash " + json.dumps({"command": "echo first-draft"})
    echoed = (await send(loop, session_id, outcome(work, "/require FINAL-VERSION")))[0]
    assert echoed.type == "user.define_outcome" and echoed.outcome_id.startswith("outc_")
    assert echoed.processed_at is not None  # processed on receipt
    assert echoed.rubric.type == "text" and echoed.max_iterations is None

    events = await wait_idle(loop, session_id)
    assert_log_sane(events)
    assert types(events).count("session.status_running") == 1  # one turn: no message was needed
    assert without_heartbeats(spans(events)) == [
        ("span.outcome_evaluation_start", 0, None),
        ("span.outcome_evaluation_end", 0, "needs_revision"),
        ("span.outcome_evaluation_start", 1, None),
        ("span.outcome_evaluation_end", 1, "satisfied"),
    ]
    starts, ends = of_type(events, SPANS[0]), of_type(events, SPANS[2])
    assert [e.outcome_evaluation_start_id for e in ends] == [s.id for s in starts]
    assert all(e.outcome_id == echoed.outcome_id for e in starts + ends)
    ids = [e.id for e in events]
    for start, end in zip(starts, ends, strict=True):  # a heartbeat while each iteration is graded
        assert "span.outcome_evaluation_ongoing" in types(events)[ids.index(start.id) : ids.index(end.id)]
    assert ends[0].usage.input_tokens > 0 and ends[0].usage.output_tokens > 0
    assert "FINAL-VERSION" in ends[0].explanation
    # The first iteration ran the tool; the revision answered the grader's explanation.
    assert "first-draft" in texts(events)[0]
    assert "needs revision" in texts(events)[1] and "FINAL-VERSION" in texts(events)[1]
    assert types(events)[-3:] == ["session.thread_status_idle", "session.usage", "session.status_idle"]
    assert stop_reason(idles(events)[0]) == {"type": "end_turn"}

    [evaluation] = await evaluations(loop, session_id)
    assert evaluation.outcome_id == echoed.outcome_id and evaluation.type == "outcome_evaluation"
    assert (evaluation.result, evaluation.iteration) == ("satisfied", 1)
    assert evaluation.description == work and evaluation.completed_at is not None
    assert evaluation.explanation == ends[1].explanation


async def test_max_iterations_reached_gets_one_acknowledgment_turn(loop: SDK) -> None:
    session_id = await new_session(loop)
    await send(loop, session_id, outcome("Write the report.", "/grade needs_revision", max_iterations=2))
    events = await wait_idle(loop, session_id)

    assert without_heartbeats(spans(events)) == [
        ("span.outcome_evaluation_start", 0, None),
        ("span.outcome_evaluation_end", 0, "needs_revision"),
        ("span.outcome_evaluation_start", 1, None),
        ("span.outcome_evaluation_end", 1, "max_iterations_reached"),
    ]
    # work, revision, acknowledgment: three model requests, the last after the final verdict
    assert len(of_type(events, "span.model_request_end")) == 3
    last_end = of_type(events, SPANS[2])[-1]
    after = types(events)[[e.id for e in events].index(last_end.id) :]
    assert after[:3] == ["span.outcome_evaluation_end", "span.model_request_start", "agent.message"]
    assert "no evaluations remain" in texts(events)[-1]
    assert stop_reason(idles(events)[0]) == {"type": "end_turn"}
    [evaluation] = await evaluations(loop, session_id)
    assert (evaluation.result, evaluation.iteration) == ("max_iterations_reached", 1)


async def test_a_failed_verdict_ends_at_once_and_the_session_takes_the_next_outcome(loop: SDK) -> None:
    session_id = await new_session(loop)
    await send(loop, session_id, outcome("Summarise the data.", "/grade failed"))
    events = await wait_idle(loop, session_id)
    assert without_heartbeats(spans(events)) == [
        ("span.outcome_evaluation_start", 0, None),
        ("span.outcome_evaluation_end", 0, "failed"),
    ]
    assert len(of_type(events, "span.model_request_end")) == 1

    await send(loop, session_id, outcome("Now the chart.", "/grade satisfied"))
    events = await wait_idle(loop, session_id, 2)
    assert [e.result for e in of_type(events, SPANS[2])] == ["failed", "satisfied"]
    assert [e.result for e in await evaluations(loop, session_id)] == ["failed", "satisfied"]


async def test_a_file_rubric_is_read_by_the_grader(loop: SDK) -> None:
    uploaded = await loop.beta.files.upload(file=("rubric.md", b"# Rubric\n/grade failed\n", "text/markdown"))
    session_id = await new_session(loop)
    event = {
        "type": "user.define_outcome",
        "description": "Do it.",
        "rubric": {"type": "file", "file_id": uploaded.id},
    }
    echoed = (await send(loop, session_id, event))[0]
    assert echoed.rubric.type == "file" and echoed.rubric.file_id == uploaded.id
    events = await wait_idle(loop, session_id)
    assert [e.result for e in of_type(events, SPANS[2])] == ["failed"]


async def test_an_outcome_in_initial_events_starts_the_session_working(loop: SDK) -> None:
    agent = await loop.beta.agents.create(name="outcome-agent", model="claude-sonnet-4-6", tools=[TOOLSET])  # type: ignore[list-item]
    environment = await loop.beta.environments.create(name=f"env-{agent.id[-8:]}")
    session = await loop.beta.sessions.create(
        agent=agent.id,
        environment_id=environment.id,
        initial_events=[outcome("Draft it.", "/grade needs_revision satisfied")],  # type: ignore[list-item]
    )
    assert session.status == "running"
    assert [(e.result, e.iteration) for e in session.outcome_evaluations] == [("pending", 0)]
    events = await wait_idle(loop, session.id)
    assert [e.result for e in of_type(events, SPANS[2])] == ["needs_revision", "satisfied"]
    assert types(events)[0] == "user.define_outcome"


async def test_an_interrupt_while_grading_ends_the_outcome_interrupted(loop: SDK) -> None:
    session_id = await new_session(loop)
    echoed = (await send(loop, session_id, outcome("Work.", "/sleep 600000\n/grade satisfied")))[0]
    # Heartbeats go on while the (endless) grader works.
    await wait_for(loop, session_id, lambda ev: len(of_type(ev, SPANS[1])) >= 2)
    [evaluation] = await evaluations(loop, session_id)
    assert evaluation.result == "evaluating" and evaluation.completed_at is None
    await send(loop, session_id, {"type": "user.interrupt"})

    events = await wait_idle(loop, session_id)
    [start] = of_type(events, SPANS[0])
    [end] = of_type(events, SPANS[2])
    assert (end.result, end.outcome_evaluation_start_id, end.outcome_id) == (
        "interrupted",
        start.id,
        echoed.outcome_id,
    )
    assert types(events)[-5:] == [
        "user.interrupt",
        "span.outcome_evaluation_end",
        "session.thread_status_idle",
        "session.usage",
        "session.status_idle",
    ]
    [evaluation] = await evaluations(loop, session_id)
    assert evaluation.result == "interrupted" and evaluation.completed_at is not None


async def test_an_interrupt_while_the_agent_works_ends_the_outcome_without_a_start(loop: SDK) -> None:
    session_id = await new_session(loop)
    await send(loop, session_id, outcome("/sleep 600000\n/long 400", "/grade satisfied"))
    await wait_for(loop, session_id, lambda ev: "span.model_request_start" in types(ev))
    await send(loop, session_id, {"type": "user.interrupt"})
    events = await wait_idle(loop, session_id)
    assert of_type(events, SPANS[0]) == []
    [end] = of_type(events, SPANS[2])
    assert (end.result, end.outcome_evaluation_start_id, end.iteration) == ("interrupted", "", 0)
    assert [e.result for e in await evaluations(loop, session_id)] == ["interrupted"]


def _message(exc: pytest.ExceptionInfo[anthropic.BadRequestError]) -> str:
    return str(exc.value.body["error"]["message"])  # type: ignore[index]


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        (outcome("d", "r", max_iterations=21), "max_iterations"),
        (outcome("d", "r", max_iterations=0), "max_iterations"),
        ({"type": "user.define_outcome", "description": "d"}, "rubric"),
        (
            {"type": "user.define_outcome", "description": "d", "rubric": {"type": "url", "url": "x"}},
            "rubric",
        ),
        ({"type": "user.define_outcome", "rubric": {"type": "text", "content": "r"}}, "description"),
        (
            {
                "type": "user.define_outcome",
                "description": "d",
                "rubric": {"type": "file", "file_id": "file_nope"},
            },
            "file_nope",
        ),
    ],
)
async def test_bad_outcomes_are_400s_and_write_nothing(
    loop: SDK, event: dict[str, Any], expected: str
) -> None:
    session_id = await new_session(loop)
    with pytest.raises(anthropic.BadRequestError) as exc:
        await send(loop, session_id, event)
    assert exc.value.status_code == 400 and expected in _message(exc)
    assert await log(loop, session_id) == []
    assert await evaluations(loop, session_id) == []


async def test_one_outcome_at_a_time(loop: SDK) -> None:
    session_id = await new_session(loop)
    with pytest.raises(anthropic.BadRequestError) as exc:
        await send(loop, session_id, outcome("a", "r"), outcome("b", "r"))
    assert "only one outcome at a time" in _message(exc)
    assert await log(loop, session_id) == []

    first = (await send(loop, session_id, outcome("/sleep 600000\n/long 400", "r")))[0]
    with pytest.raises(anthropic.BadRequestError) as exc:
        await send(loop, session_id, outcome("b", "r"))
    assert "only one outcome at a time" in _message(exc) and first.outcome_id in _message(exc)
    await send(loop, session_id, {"type": "user.interrupt"})
    await wait_idle(loop, session_id)
    assert [e.result for e in await evaluations(loop, session_id)] == ["interrupted"]


# --- the grader's protocol, without a server --------------------------------------------------


def test_the_offline_model_recognises_the_harness_grader_request() -> None:
    request = grader.request("claude-sonnet-4-6", "# Rubric\n/grade needs_revision failed", 3, "[agent] done")
    graded = grading.grader_input(validate(request.to_params()))
    assert graded is not None and "[agent] done" in graded.work
    assert (graded.rubric, graded.iteration) == ("# Rubric\n/grade needs_revision failed", 3)
    verdict, explanation = grader.read_verdict(grading.answer(graded))
    assert verdict == "failed" and "evaluation 4" in explanation
    agent_turn: MessagesBody = {
        "model": "m",
        "max_tokens": 10,
        "messages": [{"role": "user", "content": "<rubric>x</rubric>"}],
    }
    assert grading.grader_input(agent_turn) is None


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("<verdict>Satisfied</verdict><explanation>all met</explanation>", ("satisfied", "all met")),
        ("<verdict> failed </verdict>\n<explanation>\nnot a report\n", ("failed", "not a report")),
        ("It looks fine to me.", ("needs_revision", "It looks fine to me.")),
        ("<verdict>great</verdict>", ("needs_revision", "<verdict>great</verdict>")),
        ("", ("needs_revision", "(no explanation given)")),
    ],
)
def test_the_grader_answer_is_read_strictly(answer: str, expected: tuple[str, str]) -> None:
    assert grader.read_verdict(answer) == expected


async def test_a_budget_reached_before_grading_pauses_the_outcome_until_raised(loop: SDK) -> None:
    agent = await loop.beta.agents.create(name="graded-spender", model="claude-sonnet-4-6", tools=[TOOLSET])  # type: ignore[list-item]
    environment = await loop.beta.environments.create(name=f"env-{agent.id[-8:]}")
    cap = {"type": "limit", "max_list_cost": {"amount": "1", "currency": "USD"}}
    session = await loop.beta.sessions.create(agent=agent.id, environment_id=environment.id, budget=cap)  # type: ignore[arg-type]
    # ~1,000 output tokens (1.5 cents at sonnet list prices): the budget is spent before grading.
    await send(loop, session.id, outcome("/long 4000", "/grade satisfied"))
    events = await wait_idle(loop, session.id)
    assert stop_reason(idles(events)[0]) == {"type": "budget_reached"}
    assert of_type(events, SPANS[0]) == []  # the grader did not run on the spent budget
    assert [e.result for e in await evaluations(loop, session.id)] == ["running"]

    raised = {"type": "limit", "max_list_cost": {"amount": "1000", "currency": "USD"}}
    await loop.beta.sessions.update(session.id, budget=raised)  # type: ignore[arg-type]
    events = await wait_idle(loop, session.id, 2)
    assert [e.result for e in of_type(events, SPANS[2])] == ["satisfied"]
    assert stop_reason(idles(events)[-1]) == {"type": "end_turn"}
    assert [e.result for e in await evaluations(loop, session.id)] == ["satisfied"]


def test_deliverables_show_text_and_name_binary_files() -> None:
    shown = grader.deliverables(
        [("report.md", b"# Done\n", 7), ("blob.bin", b"\0\1\2", 3), ("big.txt", b"x" * 10, 50)]
    )
    assert "--- report.md (7 bytes)\n# Done" in shown
    assert "--- blob.bin (3 bytes, binary)" in shown and "\0" not in shown
    assert "[... 40 more bytes]" in shown
    assert grader.deliverables([]) == "(no files in /mnt/session/outputs)"
