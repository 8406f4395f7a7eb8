"""Sessions through the SDK: create (agent forms, environment checks, initial events), retrieve,
list (filters, bidirectional cursor), update, archive, delete, and the error envelope."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import anthropic
import httpx
import pytest

from tests.support.factories import make_agent, make_environment, make_session, user_message
from tests.support.streams import read_until
from tests.support.turns import InProcessWorker

Client = anthropic.Anthropic


def listed(client: Client, **params: Any) -> list[str]:
    return [s.id for s in client.beta.sessions.list(**params)]


# -- create --------------------------------------------------------------------------------------


def test_an_agent_id_uses_its_latest_version(client: Client) -> None:
    agent = make_agent(client, system="first")
    agent = client.beta.agents.update(agent.id, version=agent.version, system="second")
    session = make_session(client, agent.id)
    assert session.type == "session" and session.id.startswith("sesn_")
    assert (session.agent.id, session.agent.version, session.agent.system) == (agent.id, 2, "second")
    assert session.status == "idle"


def test_a_pinned_version_is_a_snapshot_later_agent_updates_do_not_touch(client: Client) -> None:
    agent = make_agent(client, system="first")
    client.beta.agents.update(agent.id, version=1, system="second")
    session = make_session(client, {"type": "agent", "id": agent.id, "version": 1})
    assert (session.agent.version, session.agent.system) == (1, "first")
    client.beta.agents.update(agent.id, version=2, system="third")
    again = client.beta.sessions.retrieve(session.id)
    assert (again.agent.version, again.agent.system) == (1, "first")


def test_overrides_apply_to_the_session_only(client: Client) -> None:
    agent = make_agent(client, system="base")
    session = make_session(client, {"type": "agent_with_overrides", "id": agent.id, "system": "override"})
    assert (session.agent.id, session.agent.system) == (agent.id, "override")
    assert client.beta.agents.retrieve(agent.id).system == "base"


def test_the_environment_must_exist_and_not_be_archived(client: Client) -> None:
    agent = make_agent(client)
    with pytest.raises(anthropic.NotFoundError):
        client.beta.sessions.create(agent=agent.id, environment_id="env_unknown")
    environment = make_environment(client)
    client.beta.environments.archive(environment.id)
    with pytest.raises(anthropic.BadRequestError, match="is archived"):
        client.beta.sessions.create(agent=agent.id, environment_id=environment.id)


def test_title_metadata_and_vault_ids_are_echoed(client: Client) -> None:
    vault = client.beta.vaults.create(display_name="echo")
    session = make_session(
        client, title="My run", metadata={"team": "a", "ticket": "42"}, vault_ids=[vault.id]
    )
    assert (session.title, session.metadata, session.vault_ids) == (
        "My run",
        {"team": "a", "ticket": "42"},
        [vault.id],
    )
    plain = make_session(client)
    assert (plain.title, plain.metadata, plain.vault_ids) == (None, {}, [])


def test_usage_and_stats_are_always_present(client: Client) -> None:
    session = client.beta.sessions.retrieve(make_session(client).id)
    assert session.usage is not None and session.usage.input_tokens == 0
    assert session.stats.active_seconds == 0 and session.stats.duration_seconds is not None
    assert session.resources == [] and session.outcome_evaluations == []


def test_resources_naming_nothing_are_refused_clearly(client: Client) -> None:
    with pytest.raises(anthropic.NotFoundError, match="Memory store memstore_1 not found"):
        make_session(client, resources=[{"type": "memory_store", "memory_store_id": "memstore_1"}])
    with pytest.raises(anthropic.NotFoundError, match="file 'file_1' not found"):
        make_session(client, resources=[{"type": "file", "file_id": "file_1"}])


def test_a_session_with_initial_events_starts_running(manual_client: Client) -> None:
    session = make_session(manual_client, initial_events=[user_message("one"), user_message("two")])
    assert session.status == "running"
    assert manual_client.beta.sessions.retrieve(session.id).status == "running"


async def test_initial_events_become_the_first_turn(manual_client: Client, producer: InProcessWorker) -> None:
    session = make_session(manual_client, initial_events=[user_message("one"), user_message("two")])
    await producer.turn(session.id)
    events = list(manual_client.beta.sessions.events.list(session.id, types=["user.message"]))
    assert [e.content[0].text for e in events] == ["one", "two"]  # type: ignore[union-attr,index]
    assert all(e.id.startswith("sevt_") and e.processed_at is not None for e in events)


@pytest.mark.parametrize(
    "bad",
    [
        {"type": "user.interrupt"},
        {"type": "user.message", "content": [{"type": "redacted"}]},
        {
            "type": "user.define_outcome",
            "description": "d",
            "rubric": {"type": "file", "file_id": "file_gone"},
        },
    ],
)
def test_initial_events_are_all_or_nothing(client: Client, bad: dict[str, Any]) -> None:
    agent = make_agent(client)
    environment = make_environment(client)
    with pytest.raises(anthropic.BadRequestError, match="initial_events"):
        client.beta.sessions.create(
            agent=agent.id,
            environment_id=environment.id,
            initial_events=[user_message(), bad],  # type: ignore[list-item]
        )
    assert listed(client, agent_id=agent.id, include_archived=True) == []


def test_at_most_fifty_initial_events(client: Client) -> None:
    with pytest.raises(anthropic.BadRequestError, match="initial_events"):
        make_session(client, initial_events=[user_message(str(i)) for i in range(51)])


# -- list ----------------------------------------------------------------------------------------


def test_list_filters(client: Client) -> None:
    agent = make_agent(client)
    environment = make_environment(client).id
    first = [make_session(client, agent.id, environment) for _ in range(3)]
    client.beta.agents.update(agent.id, version=1, system="v2")
    second = [make_session(client, agent.id, environment) for _ in range(2)]
    archived = client.beta.sessions.archive(first[0].id)
    everything = [s.id for s in [*first, *second]]

    assert listed(client, agent_id=agent.id) == [s.id for s in [*first[1:], *second]][::-1]
    assert listed(client, agent_id=agent.id, include_archived=True) == everything[::-1]
    assert listed(client, agent_id=agent.id, include_archived=True, order="asc") == everything
    assert listed(client, agent_id=agent.id, agent_version=2) == [s.id for s in second][::-1]
    assert listed(client, agent_id=agent.id, statuses=["terminated"], include_archived=True) == [archived.id]
    assert set(listed(client, agent_id=agent.id, statuses=["idle", "running"])) == set(everything[1:])

    pivot = first[2].created_at
    scope = {"agent_id": agent.id, "include_archived": True, "order": "asc"}
    assert listed(client, **scope, created_at_gte=pivot) == everything[2:]
    assert listed(client, **scope, created_at_gt=pivot) == everything[3:]
    assert listed(client, **scope, created_at_lte=pivot) == everything[:3]
    assert listed(client, **scope, created_at_lt=pivot) == everything[:2]
    zulu = (pivot + timedelta(days=1)).isoformat().replace("+00:00", "Z")
    assert listed(client, **scope, created_at_gte=zulu) == []
    with pytest.raises(anthropic.BadRequestError, match="agent_version"):
        client.beta.sessions.list(agent_version=2)


@pytest.mark.parametrize("order", ["desc", "asc"])
def test_the_cursor_pages_forward_then_back_without_gaps_or_duplicates(client: Client, order: str) -> None:
    agent = make_agent(client)
    environment = make_environment(client).id
    created = [make_session(client, agent.id, environment).id for _ in range(7)]
    expected = created[::-1] if order == "desc" else created

    page = client.beta.sessions.list(agent_id=agent.id, limit=2, order=order)  # type: ignore[arg-type]
    assert page.prev_page is None
    forward = [[s.id for s in page.data]]
    while page.next_page:
        page = client.beta.sessions.list(agent_id=agent.id, limit=2, order=order, page=page.next_page)  # type: ignore[arg-type]
        forward.append([s.id for s in page.data])
    assert [i for p in forward for i in p] == expected
    assert len(forward) == 4

    backward = [[s.id for s in page.data]]
    while page.prev_page:
        page = client.beta.sessions.list(agent_id=agent.id, limit=2, order=order, page=page.prev_page)  # type: ignore[arg-type]
        backward.append([s.id for s in page.data])
    assert backward == forward[::-1]
    # The SDK's auto-pagination follows next_page.
    assert [s.id for s in client.beta.sessions.list(agent_id=agent.id, limit=3, order=order)] == expected  # type: ignore[arg-type]


def test_a_garbage_cursor_is_a_400(client: Client) -> None:
    with pytest.raises(anthropic.BadRequestError, match="cursor"):
        client.beta.sessions.list(page="not-a-cursor")
    with pytest.raises(anthropic.BadRequestError):
        client.beta.sessions.list(statuses=["sleeping"])  # type: ignore[list-item]


# -- update --------------------------------------------------------------------------------------


def session_updates(client: Client, session_id: str) -> list[Any]:
    return list(client.beta.sessions.events.list(session_id, types=["session.updated"]))


def test_update_title_and_metadata_patch(client: Client) -> None:
    session = make_session(client, metadata={"keep": "1", "drop": "2"})
    updated = client.beta.sessions.update(session.id, title="New", metadata={"drop": None, "add": "3"})
    assert updated.title == "New" and updated.metadata == {"keep": "1", "add": "3"}
    events = session_updates(client, session.id)
    assert len(events) == 1
    assert (events[0].title, events[0].metadata, events[0].agent) == ("New", {"keep": "1", "add": "3"}, None)

    client.beta.sessions.update(session.id, title="New")  # no change: no event
    assert len(session_updates(client, session.id)) == 1


def test_updating_the_agent_tools_while_idle_emits_only_that_change(client: Client) -> None:
    session = make_session(client, title="same")
    tools = [
        {
            "type": "custom",
            "name": "get_weather",
            "description": "Weather",
            "input_schema": {"type": "object"},
        }
    ]
    updated = client.beta.sessions.update(session.id, agent={"tools": tools}, title="same")  # type: ignore[arg-type]
    assert [t.name for t in updated.agent.tools] == ["get_weather"]  # type: ignore[union-attr]
    (event,) = session_updates(client, session.id)
    assert event.agent is not None and [t.name for t in event.agent.tools] == ["get_weather"]
    assert event.title is None and event.metadata is None


def test_vault_ids_cannot_be_updated(client: Client) -> None:
    session = make_session(client)
    with pytest.raises(anthropic.BadRequestError, match="vault_ids"):
        client.beta.sessions.update(session.id, vault_ids=["vlt_1"])


def test_the_agent_cannot_change_while_running(manual_client: Client) -> None:
    session = make_session(manual_client, initial_events=[user_message()])
    with pytest.raises(anthropic.BadRequestError, match="idle"):
        manual_client.beta.sessions.update(session.id, agent={"tools": []})


# -- archive and delete --------------------------------------------------------------------------


def test_archive_terminates_an_idle_session_and_closes_it_to_events(client: Client) -> None:
    session = make_session(client)
    archived = client.beta.sessions.archive(session.id)
    assert archived.status == "terminated" and archived.archived_at is not None
    types = [e.type for e in client.beta.sessions.events.list(session.id)]
    assert types[-1] == "session.status_terminated"
    with pytest.raises(anthropic.ConflictError):
        client.beta.sessions.events.send(session.id, events=[user_message()])  # type: ignore[list-item]
    assert session.id not in listed(client, statuses=["terminated"])
    assert session.id in listed(client, statuses=["terminated"], include_archived=True)


def test_a_running_session_can_be_neither_archived_nor_deleted(manual_client: Client) -> None:
    session = make_session(manual_client, initial_events=[user_message()])
    with pytest.raises(anthropic.BadRequestError, match="running"):
        manual_client.beta.sessions.archive(session.id)
    with pytest.raises(anthropic.BadRequestError, match="running"):
        manual_client.beta.sessions.delete(session.id)


async def test_delete_removes_the_session_and_ends_open_streams(
    manual_client: Client, manual_async_client: anthropic.AsyncAnthropic, producer: InProcessWorker
) -> None:
    session = make_session(manual_client)
    async with await manual_async_client.beta.sessions.events.stream(session.id) as stream:
        await producer.wait_for_subscribers(session.id, 1)
        deleted = await manual_async_client.beta.sessions.delete(session.id)
        assert (deleted.id, deleted.type) == (session.id, "session_deleted")
        received = await read_until(stream, lambda e: False)
    assert [e.type for e in received] == ["session.deleted"]
    with pytest.raises(anthropic.NotFoundError):
        await manual_async_client.beta.sessions.retrieve(session.id)
    with pytest.raises(anthropic.NotFoundError):
        await manual_async_client.beta.sessions.events.list(session.id)


# -- errors --------------------------------------------------------------------------------------


def test_a_bad_key_is_a_401(mas_server: Any) -> None:
    with (
        anthropic.Anthropic(base_url=mas_server.url, api_key="wrong", max_retries=0) as stranger,
        pytest.raises(anthropic.AuthenticationError),
    ):
        stranger.beta.sessions.list()


def test_an_unknown_session_is_a_404_with_the_request_id(client: Client, http: httpx.Client) -> None:
    with pytest.raises(anthropic.NotFoundError) as caught:
        client.beta.sessions.retrieve("sesn_unknown")
    body = caught.value.body
    assert isinstance(body, dict) and body["type"] == "error"
    assert body["error"]["type"] == "not_found_error"
    assert caught.value.request_id == body["request_id"]
    raw = http.get("/v1/sessions/sesn_unknown")
    assert raw.status_code == 404 and raw.headers["request-id"] == raw.json()["request_id"]
