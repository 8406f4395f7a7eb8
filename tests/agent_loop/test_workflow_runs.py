"""Workflow runs (`multiagent_20261001` `workflows`) through the SDK with the offline model: a
plan of phases whose tasks run as threads in parallel, later phases told the earlier replies;
the `workflow_run.*` events in the SDK's order; refused plans, the thread limit, the open-run
limit, idle runs, stops, interrupts and timeouts."""

from __future__ import annotations

import json
from typing import Any

import anthropic

from tests.support.loop import (
    MODEL,
    TOOLSET,
    always_ask,
    assert_log_sane,
    children,
    message,
    of_type,
    result_text,
    send,
    thread_log,
    toolset,
    turn,
    types,
    wait_for,
    wait_idle,
)

SDK = anthropic.AsyncAnthropic


async def session_of(client: SDK, tools: list[Any] | None = None) -> str:
    agent = await client.beta.agents.create(
        name="lead",
        model=MODEL,
        tools=tools if tools is not None else [TOOLSET],  # type: ignore[list-item]
        multiagent={"type": "multiagent_20261001"},
    )
    environment = await client.beta.environments.create(name=f"env-{agent.id[-8:]}")
    session = await client.beta.sessions.create(agent=agent.id, environment_id=environment.id)
    return session.id


def run_workflow(plan: dict[str, Any]) -> str:
    return "/tool run_workflow " + json.dumps(plan)


def inline(name: str, task: str) -> dict[str, Any]:
    return {"inline_agent": {"name": name}, "message": task}


def run_events(events: list[Any]) -> list[Any]:
    return [e for e in events if e.type.startswith("workflow_run.")]


async def test_a_run_goes_phase_by_phase_with_later_phases_seeing_earlier_replies(loop: SDK) -> None:
    session_id = await session_of(loop)
    plan = {
        "name": "research",
        "description": "two facts, then a summary",
        "phases": [
            {"name": "gather", "tasks": [inline("a", "/say alpha-fact"), inline("b", "/say beta-fact")]},
            {"name": "combine", "description": "merge", "tasks": [inline("c", "Combine what was found.")]},
        ],
    }
    await send(loop, session_id, message(run_workflow(plan)))
    events = await wait_idle(loop, session_id)
    assert_log_sane(events)

    flow = run_events(events)
    created = flow[0]
    run_id = created.workflow_run_id
    assert created.type == "workflow_run.created" and created.name == "research"
    assert created.description == "two facts, then a summary"
    assert [(p.name, p.description) for p in created.phases] == [("gather", None), ("combine", "merge")]
    gather, combine = (p.id for p in created.phases)
    assert [(e.type, getattr(e, "workflow_run_phase_id", None)) for e in flow] == [
        ("workflow_run.created", None),
        ("workflow_run.status_running", None),
        ("workflow_run.phase_started", gather),
        ("workflow_run.phase_ended", gather),
        ("workflow_run.phase_started", combine),
        ("workflow_run.phase_ended", combine),
        ("workflow_run.status_ended", None),
    ]
    assert all(e.workflow_run_id == run_id for e in flow)
    assert flow[3].phase_started_id == flow[2].id and flow[5].phase_started_id == flow[4].id
    assert flow[-1].result.type == "completed"
    result = of_type(events, "agent.tool_result")[0]
    assert not result.is_error and run_id in result_text(result)

    # Each phase's threads carry the run's id; the second phase started after the first replied.
    created_threads = of_type(events, "session.thread_created")
    assert [t.agent_name for t in created_threads] == ["a", "b", "c"]
    assert all(t.workflow_run_id == run_id for t in created_threads)
    ids = [e.id for e in events]
    assert ids.index(created_threads[2].id) > ids.index(flow[3].id)
    threads = await children(loop, session_id)
    assert {t.workflow_run_id for t in threads} == {run_id}
    (last,) = [t for t in threads if t.agent.name == "c"]
    own = await thread_log(loop, session_id, last.id)
    reply = result_text(of_type(own, "agent.thread_message_sent")[-1])
    assert "Phase gather:" in reply and "alpha-fact" in reply and "beta-fact" in reply
    # Every thread's reply also reached the agent that started the run.
    received = of_type(events, "agent.thread_message_received")
    assert sorted(r.from_agent_name for r in received) == ["a", "b", "c"]


async def test_a_refused_plan_creates_no_run(loop: SDK) -> None:
    session_id = await session_of(loop)
    plan = {"name": "bad", "phases": [{"name": "p", "tasks": [{"agent": "nobody", "message": "x"}]}]}
    events = await turn(loop, session_id, run_workflow(plan))
    (failed,) = run_events(events)
    assert failed.type == "workflow_run.error" and failed.workflow_run_id is None
    assert failed.error.type == "program_error" and "nobody" in failed.error.message
    result = of_type(events, "agent.tool_result")[0]
    assert result.is_error and "nobody" in result_text(result)

    events = await turn(loop, session_id, run_workflow({"name": "empty", "phases": []}))
    assert run_events(events)[-1].error.type == "program_error"
    assert await children(loop, session_id) == []


async def test_a_phase_over_the_thread_limit_ends_the_run_in_error(loop: SDK) -> None:
    session_id = await session_of(loop)
    plan = {
        "name": "wide",
        "phases": [{"name": "all", "tasks": [inline(f"w{i}", "/say x") for i in range(26)]}],
    }
    events = await turn(loop, session_id, run_workflow(plan))
    assert [e.type for e in run_events(events)] == [
        "workflow_run.created",
        "workflow_run.status_running",
        "workflow_run.phase_started",
        "workflow_run.error",
        "workflow_run.phase_ended",
        "workflow_run.status_ended",
    ]
    error, ended = run_events(events)[3], run_events(events)[5]
    assert error.error.type == "thread_limit_error" and error.workflow_run_id == ended.workflow_run_id
    assert ended.result.type == "error" and ended.result.error.type == "thread_limit_error"
    assert await children(loop, session_id) == []


async def test_runs_waiting_on_the_client_are_idle_open_runs_are_limited_and_stop(loop: SDK) -> None:
    # The inline threads get the lead's bash, which asks first: each run idles on its thread.
    session_id = await session_of(loop, [toolset(always_ask("bash"))])
    task = inline("asker", "/tool bash " + json.dumps({"command": "echo hi"}))
    plans = [run_workflow({"name": f"run{i}", "phases": [{"name": "p", "tasks": [task]}]}) for i in range(5)]
    await send(loop, session_id, message("\n".join(plans)))
    events = await wait_for(
        loop,
        session_id,
        lambda log: (
            len(of_type(log, "workflow_run.status_idle")) == 5 and "session.status_idle" in types(log)
        ),
    )
    run_ids = [e.workflow_run_id for e in of_type(events, "workflow_run.created")]
    assert sorted(e.workflow_run_id for e in of_type(events, "workflow_run.status_idle")) == sorted(run_ids)
    assert of_type(events, "workflow_run.status_ended") == []

    refused = await turn(
        loop, session_id, run_workflow({"name": "sixth", "phases": [{"name": "p", "tasks": [task]}]})
    )
    failed = run_events(refused)[-1]
    assert failed.type == "workflow_run.error" and failed.error.type == "max_workflow_runs_error"
    assert failed.workflow_run_id is None

    stopped = await turn(
        loop, session_id, "/tool stop_workflow " + json.dumps({"workflow_run_id": run_ids[0]})
    )
    ended = of_type(stopped, "workflow_run.status_ended")
    assert [(e.workflow_run_id, e.result.type) for e in ended] == [(run_ids[0], "stopped")]
    assert of_type(stopped, "workflow_run.phase_ended")[-1].workflow_run_id == run_ids[0]

    # An interrupt of the whole session stops the runs still open.
    await send(loop, session_id, {"type": "user.interrupt"})
    events = await wait_for(loop, session_id, lambda log: len(of_type(log, "workflow_run.status_ended")) == 5)
    assert {e.result.type for e in of_type(events, "workflow_run.status_ended")} == {"stopped"}
    assert len(of_type(events, "workflow_run.phase_ended")) == 5


async def test_a_run_past_its_time_limit_ends_with_a_timeout(loop: SDK) -> None:
    session_id = await session_of(loop)
    plan = {
        "name": "slow",
        "timeout_seconds": 1,
        "phases": [{"name": "p", "tasks": [inline("slow", "/sleep 20000\n/say late")]}],
    }
    await send(loop, session_id, message(run_workflow(plan)))
    events = await wait_for(loop, session_id, lambda log: "workflow_run.status_ended" in types(log))
    flow = run_events(events)
    assert [e.type for e in flow][-3:] == [
        "workflow_run.error",
        "workflow_run.phase_ended",
        "workflow_run.status_ended",
    ]
    assert flow[-3].error.type == "timeout_error" and flow[-1].result.type == "error"
    (thread,) = await children(loop, session_id)
    events = await wait_idle(loop, session_id)
    own = await thread_log(loop, session_id, thread.id)
    assert "user.interrupt" in types(own) and "agent.message" not in types(own)  # cut off mid-request


async def test_an_interrupted_thread_idles_its_run_and_archiving_the_session_stops_it(loop: SDK) -> None:
    session_id = await session_of(loop)
    plan = {
        "name": "pair",
        "phases": [
            {"name": "p", "tasks": [inline("slow", "/sleep 30000\n/say late"), inline("quick", "/say q")]}
        ],
    }
    await send(loop, session_id, message(run_workflow(plan)))
    # The quick task replied; the slow one is still in its model request.
    await wait_for(loop, session_id, lambda log: len(of_type(log, "agent.thread_message_received")) == 1)
    (slow,) = [t for t in await children(loop, session_id) if t.agent.name == "slow"]
    assert slow.status == "running"
    await send(loop, session_id, {"type": "user.interrupt", "session_thread_id": slow.id})
    events = await wait_for(
        loop,
        session_id,
        lambda log: "workflow_run.status_idle" in types(log) and "session.status_idle" in types(log),
    )
    assert of_type(events, "workflow_run.status_ended") == []  # idle, not ended: the slow task has no reply

    await loop.beta.sessions.archive(session_id)
    events = [e async for e in loop.beta.sessions.events.list(session_id, limit=1000)]
    (ended,) = of_type(events, "workflow_run.status_ended")
    assert ended.result.type == "stopped"
    assert types(events).index("workflow_run.status_ended") < types(events).index("session.status_terminated")

    await loop.beta.sessions.delete(session_id)  # its runs go with it
