"""The hot reads (GET an agent or an environment, the sessions list, the events list) are rendered
from plain rows once (`render`), and served before FastAPI's router (`app.api.fastpath`). Their
bytes must be exactly what the model-based path produced (FastAPI validating the service's model
against `response_model` and serialising it), for rows with every kind of field; and the fast
path must keep the checks and the error envelope of the /v1 routes."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import anthropic
import httpx
import pytest
from pydantic import TypeAdapter
from sqlalchemy import text as sqltext
from sqlalchemy.ext.asyncio import AsyncSession

from app.agents import service as agents
from app.agents.schemas import Agent
from app.db.engine import Database
from app.environments import service as environments
from app.environments.schemas import Environment
from app.events import service as events
from app.events.notifier import Notifier
from app.events.schemas import EventPage
from app.sessions import event_listing as listing
from app.sessions import rendering
from app.sessions import service as sessions
from app.sessions.schemas import SessionPage, zero_usage
from app.shared.pagination import decode_cursor
from tests.conftest import make_settings
from tests.support.clients import API_KEY, strict_client
from tests.support.server import ServerThread

NOW = datetime(2026, 11, 30, 12, 0, 0, 123456, tzinfo=UTC)
TRICKY = 'quote " backslash \\ tab \t newline \n unicode é 漢字 🙂 line-sep \u2028 ctrl \x01 end'


def old_bytes(model: Any, value: Any) -> bytes:
    """What FastAPI sends for ``value`` returned by an endpoint with ``response_model=model``."""
    adapter = TypeAdapter(model)
    return adapter.dump_json(adapter.validate_python(value), by_alias=True)


@pytest.fixture
def fixed_now(monkeypatch: pytest.MonkeyPatch) -> datetime:
    """Sessions show durations up to now: both renderings see the same now."""
    monkeypatch.setattr(sessions, "utcnow", lambda: NOW)
    return NOW


async def test_an_agent_renders_as_the_model_did(
    client: anthropic.Anthropic, database: Database, db: AsyncSession
) -> None:
    created = client.beta.agents.create(
        name=f"render {TRICKY}",
        model="claude-sonnet-4-6",
        description=TRICKY,
        system="line one\nline two",
        metadata={"team": "platform", "note": TRICKY},
        tools=[{"type": "agent_toolset_20260401"}],
    )
    client.beta.agents.update(created.id, version=created.version, description="second version")
    client.beta.agents.archive(created.id)
    for version in (None, 1, 2):
        expected = old_bytes(Agent, await agents.get(db, created.id, version))
        assert await agents.render(database.raw, created.id, version) == expected
    assert (
        json.loads(await agents.render(database.raw, created.id, 1))["updated_at"]
        != json.loads(await agents.render(database.raw, created.id))["updated_at"]
    ), "an older version shows when it was saved"


async def test_an_environment_renders_as_the_model_did(
    client: anthropic.Anthropic, database: Database, db: AsyncSession
) -> None:
    plain = client.beta.environments.create(name="render-plain")
    full = client.beta.environments.create(
        name="render-full", description=TRICKY, metadata={"owner": "bench", "note": TRICKY}
    )
    client.beta.environments.archive(full.id)
    for environment_id in (plain.id, full.id):
        expected = old_bytes(Environment, await environments.get(db, environment_id))
        assert await environments.render(database.raw, environment_id) == expected


async def test_the_sessions_list_renders_as_the_model_did(
    client: anthropic.Anthropic, database: Database, db: AsyncSession, fixed_now: datetime
) -> None:
    agent = client.beta.agents.create(name="render-sessions", model="claude-sonnet-4-6")
    environment = client.beta.environments.create(name="render-sessions")
    made = [
        client.beta.sessions.create(
            agent=agent.id, environment_id=environment.id, title=TRICKY, metadata={"n": str(n), "t": TRICKY}
        )
        for n in range(4)
    ]
    client.beta.sessions.create(agent=agent.id, environment_id=environment.id)  # no title, no metadata
    lead = client.beta.agents.create(
        name="render-lead", model="claude-sonnet-4-6", multiagent={"type": "multiagent_20261001"}
    )
    client.beta.sessions.create(agent=lead.id, environment_id=environment.id)  # usage rolls up threads
    # The text of the stand-ins that mark the clock's figures in a kept rendering, as a title.
    stand_ins = rendering._ACTIVE_TOKEN + b" " + rendering._DURATION_TOKEN
    client.beta.sessions.create(agent=agent.id, environment_id=environment.id, title=stand_ins.decode())
    client.beta.sessions.archive(made[0].id)
    # Each order walks every page twice: the second time from the rendered rows kept per content.
    for order in ("desc", "asc", "desc", "asc"):
        page: str | None = None
        for _ in range(50):  # walk every page of two, both ways
            old = await sessions.list_sessions(
                db,
                limit=2,
                cursor=decode_cursor(page, order),
                order=order,
                agent_id=None,
                agent_version=None,
                statuses=None,
                include_archived=False,
                ranges={},
            )
            new = await sessions.render_list(database.raw, limit=2, page=page, order=order)
            assert new == old_bytes(SessionPage, old)
            page = old.next_page
            if page is None:
                break
        assert page is None


async def test_the_events_list_renders_as_the_model_did(
    client: anthropic.Anthropic, database: Database, db: AsyncSession
) -> None:
    agent = client.beta.agents.create(name="render-events", model="claude-sonnet-4-6")
    environment = client.beta.environments.create(name="render-events")
    session = client.beta.sessions.create(agent=agent.id, environment_id=environment.id)
    # Server-made text with a NUL (stored with U+FFFD instead), numbers of every size, nesting.
    async with database.unit_of_work() as write:
        await events.append(
            write,
            Notifier(),
            session.id,
            [
                {"type": "agent.message", "content": [{"type": "text", "text": f"nul \x00 here {TRICKY}"}]},
                {"type": "session.status_running"},
            ],
        )
    events_sent = [
        {"type": "user.message", "content": [{"type": "text", "text": TRICKY}]},
        {"type": "user.message", "content": [{"type": "text", "text": "/say hello"}]},
    ]
    client.beta.sessions.events.send(session.id, events=events_sent)  # type: ignore[arg-type]
    settled(client, session.id)
    for order in ("asc", "desc"):
        for limit in (1, 3, 1000):
            page: str | None = None
            for _ in range(20):
                cursor = decode_cursor(page, order)
                old = await listing.list_events(
                    db, session.id, limit=limit, cursor=cursor, order=order, types=None, ranges={}
                )
                new = await listing.render_events(
                    database.raw, session.id, limit=limit, page=page, order=order
                )
                assert new.decode() == old_bytes(EventPage, old).decode()
                page = old.next_page
                if page is None:
                    break
    texts = json.loads(
        await listing.render_events(database.raw, session.id, limit=1000, page=None, order="asc")
    )
    assert any("nul \ufffd here" in json.dumps(e, ensure_ascii=False) for e in texts["data"])


def settled(client: anthropic.Anthropic, session_id: str) -> None:
    """Wait until the worker has answered (the log no longer moves while it is compared)."""
    for _ in range(600):
        if client.beta.sessions.retrieve(session_id).status == "idle":
            kinds = [e.type for e in client.beta.sessions.events.list(session_id)]
            if "agent.message" in kinds and kinds[-1] == "session.status_idle":
                return
        time.sleep(0.05)
    pytest.fail("the session did not settle")


# -- the fast path against FastAPI's route, over HTTP ------------------------------------------------


def through_fastapi(http: httpx.Client, path: str, params: dict[str, str] | None = None) -> httpx.Response:
    """The same GET, sent so that the fast path declines it (a request with a body goes to FastAPI,
    which ignores a GET's body)."""
    return http.request("GET", path, params=params, content=b" ")


def test_the_fast_path_sends_what_the_route_sends(client: anthropic.Anthropic, http: httpx.Client) -> None:
    agent = client.beta.agents.create(name="fast-vs-route", model="claude-sonnet-4-6", metadata={"k": TRICKY})
    environment = client.beta.environments.create(name="fast-vs-route")
    session = client.beta.sessions.create(agent=agent.id, environment_id=environment.id)
    client.beta.sessions.events.send(
        session.id, events=[{"type": "user.message", "content": [{"type": "text", "text": "/say hello"}]}]
    )
    settled(client, session.id)
    for path, params in (
        (f"/v1/agents/{agent.id}", None),
        (f"/v1/agents/{agent.id}", {"version": "1"}),
        (f"/v1/environments/{environment.id}", None),
        (f"/v1/sessions/{session.id}/events", {"limit": "2", "order": "desc"}),
    ):
        fast, routed = http.get(path, params=params), through_fastapi(http, path, params)
        assert fast.status_code == routed.status_code == 200
        assert fast.content == routed.content
        assert fast.headers["content-type"] == routed.headers["content-type"] == "application/json"
        assert fast.headers["request-id"] != routed.headers["request-id"]


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/v1/agents/agent_missing", "Agent agent_missing not found."),
        ("/v1/agents/{agent}?version=99", "Agent version not found."),
        ("/v1/environments/env_missing", "Environment env_missing not found."),
        ("/v1/sessions/sesn_missing/events", "Session sesn_missing not found"),
    ],
)
def test_a_missing_resource_is_the_same_404_on_both_paths(
    client: anthropic.Anthropic, http: httpx.Client, path: str, message: str
) -> None:
    agent = client.beta.agents.create(name="fast-404", model="claude-sonnet-4-6")
    path = path.replace("{agent}", agent.id)
    bodies = []
    for response in (http.get(path), through_fastapi(http, path)):
        assert response.status_code == 404
        body = response.json()
        assert body["request_id"] == response.headers["request-id"]
        assert body["error"]["type"] == "not_found_error" and body["error"]["message"] == message
        bodies.append({**body, "request_id": None})
    assert bodies[0] == bodies[1]


def test_what_the_fast_path_leaves_to_fastapi_is_answered_as_before(
    client: anthropic.Anthropic, http: httpx.Client, mas_server: ServerThread
) -> None:
    agent = client.beta.agents.create(name="fast-edges", model="claude-sonnet-4-6")
    with httpx.Client(base_url=mas_server.url, timeout=30) as anonymous:
        refused = anonymous.get(f"/v1/agents/{agent.id}", headers={"x-api-key": "sk-wrong"})
    assert refused.status_code == 401 and refused.json()["error"]["type"] == "authentication_error"
    nul = http.get("/v1/sessions", params={"page": "a\x00b"})
    assert nul.status_code == 400 and "NUL" in nul.json()["error"]["message"]
    for params in ({"version": "0"}, {"version": "x"}, {"version": "01"}):
        answered = http.get(f"/v1/agents/{agent.id}", params=params)
        assert answered.status_code == (200 if params["version"] == "01" else 400)
    over = http.get("/v1/sessions", params={"limit": "101"})
    assert over.status_code == 400 and over.json()["error"]["type"] == "invalid_request_error"
    bad_page = http.get("/v1/sessions", params={"page": "not-a-cursor"})
    assert bad_page.status_code == 400 and bad_page.json()["error"]["type"] == "invalid_request_error"
    filtered = http.get("/v1/sessions", params={"statuses[]": "idle", "limit": "1"})
    assert filtered.status_code == 200 and all(s["status"] == "idle" for s in filtered.json()["data"])


@pytest.fixture(scope="module")
def limited(database_url: str) -> Iterator[ServerThread]:
    settings = make_settings(database_url, rate_limits="on", rate_limit_reads_per_minute=4)
    server = ServerThread(settings).start()
    try:
        yield server
    finally:
        server.stop()


def test_the_fast_path_spends_the_read_budget(limited: ServerThread) -> None:
    with strict_client(limited.url) as sdk:
        environment = sdk.beta.environments.create(name="fast-limited")  # a create: its own budget
        for _ in range(4):
            sdk.beta.environments.retrieve(environment.id)
        with pytest.raises(anthropic.RateLimitError) as exc:
            sdk.beta.environments.retrieve(environment.id)
    assert exc.value.response.headers["retry-after"] in {str(n) for n in range(1, 16)}
    assert exc.value.body == {
        "type": "error",
        "error": {
            "type": "rate_limit_error",
            "message": "Rate limit exceeded: 4 requests per minute for this API key",
        },
        "request_id": exc.value.response.headers["request-id"],
    }


def test_an_api_key_in_the_bearer_header_takes_the_fast_path_too(mas_server: ServerThread) -> None:
    headers = {"authorization": f"Bearer {API_KEY}", "anthropic-version": "2023-06-01"}
    with httpx.Client(base_url=mas_server.url, headers=headers, timeout=30) as bearer:
        assert bearer.get("/v1/sessions", params={"limit": "1"}).status_code == 200


def test_a_key_revoked_in_this_process_is_forgotten_at_once() -> None:
    from app.api.auth import KeyCache
    from app.api.scopes import Principal

    cache = KeyCache()
    cache.remember("sk-mas-env-one", Principal("environment_key", "envkey_1", environment_id="env_1"))
    cache.remember("sk-mas-env-two", Principal("environment_key", "envkey_2", environment_id="env_1"))
    cache.forget("envkey_1")
    assert cache.fresh("sk-mas-env-one") is None
    assert cache.fresh("sk-mas-env-two") is not None


def test_kept_event_renderings_stay_within_their_bounds() -> None:
    kept = events.RenderedEvents(max_bytes=2_000, max_event_bytes=500)
    small = (
        1,
        "sevt_1",
        "agent.message",
        '{"content": [{"type": "text", "text": "hi"}]}',
        "2026-11-30 12:00:00.123000",
    )
    big = (2, "sevt_2", "agent.message", json.dumps({"content": [{"type": "text", "text": "x" * 600}]}), None)
    first = kept.render([small, big])
    assert first == kept.render([small, big])  # the same bytes from the kept and the new rendering
    assert json.loads(first[0]) == {
        "id": "sevt_1",
        "type": "agent.message",
        "content": [{"type": "text", "text": "hi"}],
        "processed_at": "2026-11-30T12:00:00.123Z",
    }
    assert len(kept) == 1, "an event over the per-event bound is rendered, not kept"
    for n in range(20):  # past the byte bound the renderings are dropped, not grown
        kept.render(
            [(3 + n, f"sevt_{3 + n}", "session.status_idle", '{"stop_reason": {"type": "end_turn"}}', None)]
        )
    assert len(kept) < 20


def _session_row(running_since: str | None, terminated_at: str | None, active: float) -> tuple[Any, ...]:
    """A plain row of `repository.SHOWN` as SQLite returns it (JSON and timestamps as text)."""
    usage = json.dumps({"input_tokens": 7, "output_tokens": 3, "_private": 1})
    agent = json.dumps({"id": "agent_1", "name": "clock", "multiagent": None})
    status = "terminated" if terminated_at else "running" if running_since else "idle"
    return (
        "sesn_clock", agent, "env_1", status,
        TRICKY, json.dumps({"k": "v"}), "[]", "[]", None, usage, active, running_since,
        "2026-11-30 11:00:00.250000", "2026-11-30 11:30:00.000001", None, terminated_at, None, None,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("running_since", "terminated_at"),
    [
        (None, None),  # idle: the duration moves, the active seconds do not
        ("2026-11-30 11:58:59.999999", None),  # running: both move
        (None, "2026-11-30 11:45:00.123456"),  # terminated: neither moves
        ("2026-11-30 11:40:00.000000", "2026-11-30 11:45:00.123456"),  # a clock left running at the end
    ],
)
def test_a_kept_session_rendering_shows_the_clock_at_each_request(
    running_since: str | None, terminated_at: str | None
) -> None:
    """The kept rendering (figures that cannot move written in once) against the model's, at
    several times, kept and new."""
    from app.sessions.repository import columns
    from app.sessions.schemas import SessionOut

    kept = rendering.RenderedSessions()
    row = _session_row(running_since, terminated_at, 12.3456789)
    for seconds in (0.0, 0.0004, 1.5, 61.0001, 3600.25):
        now = datetime.fromtimestamp(NOW.timestamp() + seconds, UTC)
        expected = old_bytes(SessionOut, sessions.to_out(columns(row), now))
        assert kept.render(row, now, None) == expected
        assert kept.render(row, now, None) == expected  # from the kept parts
    assert len(kept) == 1


async def _both(database: Database, db: AsyncSession) -> tuple[bytes, bytes]:
    """The first page of the list as the fast path renders it, and as the ORM path's models do."""
    old = await sessions.list_sessions(
        db, limit=5, cursor=None, order="desc", agent_id=None, agent_version=None, statuses=None,
        include_archived=False, ranges={},
    )  # fmt: skip
    await db.rollback()  # the next read sees what was committed since
    return await sessions.render_list(database.raw, limit=5, page=None, order="desc"), old_bytes(
        SessionPage, old
    )


async def test_a_changed_session_is_listed_as_it_is_now(
    client: anthropic.Anthropic, database: Database, db: AsyncSession, fixed_now: datetime
) -> None:
    """A kept rendering is found by the row's content or its version (id, row_version): a change
    is a new key either way, so the list shows the change at once."""
    agent = client.beta.agents.create(name="render-changed", model="claude-sonnet-4-6")
    environment = client.beta.environments.create(name="render-changed")
    made = client.beta.sessions.create(agent=agent.id, environment_id=environment.id, title="before")

    for title in ("before", "after", "after again"):
        if title != "before":
            client.beta.sessions.update(made.id, title=title)
        for _ in range(2):  # new, then kept
            new, old = await _both(database, db)
            assert new == old
            assert json.loads(new)["data"][0]["title"] == title


# Plain SQL that changes what a session shows, column by column, as another process might.
_CHANGES = {
    "title": "'set by plain SQL'",
    "metadata": """'{"changed": "by plain SQL"}'""",
    "status": "'terminated'",
    "active_seconds": "42.5",
    "usage": f"'{json.dumps({**zero_usage(), 'input_tokens': 11, 'output_tokens': 22})}'",
    "vault_ids": """'["vlt_plain_sql"]'""",
    "deployment_id": "'depl_plain_sql'",
    "updated_at": "'2026-11-30 11:59:59.000001'",
}


async def test_a_session_changed_by_plain_sql_is_listed_as_it_is_now(
    client: anthropic.Anthropic, database: Database, db: AsyncSession, fixed_now: datetime
) -> None:
    """A change no mas code path made (plain SQL, as another process or an operator might) is
    listed at once: the kept rendering is keyed by a version the database moves itself."""
    agent = client.beta.agents.create(name="render-plain-sql", model="claude-sonnet-4-6")
    environment = client.beta.environments.create(name="render-plain-sql")
    made = client.beta.sessions.create(agent=agent.id, environment_id=environment.id, title="before")

    new, old = await _both(database, db)
    assert new == old
    assert (await _both(database, db))[0] == new  # the kept rendering
    for column, value in _CHANGES.items():
        async with database.unit_of_work() as writer:
            change = sqltext(f"UPDATE sessions SET {column} = {value} WHERE id = :id")
            await writer.execute(change, {"id": made.id})
        before = new
        new, old = await _both(database, db)
        assert new == old, f"a change of {column} by plain SQL was not listed"
        assert new != before


@pytest.mark.parametrize("after", [False, True])
@pytest.mark.parametrize("descending", [True, False])
async def test_the_sessions_list_reads_its_page_from_its_index(
    database: Database, db: AsyncSession, after: bool, descending: bool
) -> None:
    """A page is the next entries of ``ix_sessions_listed`` (no sort of every session: SQLite took
    the parent_session_id index for ``parent_session_id IS NULL`` and sorted them all)."""
    from app.sessions import repository

    sql = repository.shown_versions_sql(database.raw, after, descending)
    literal = sql.replace(f"LIMIT ${3 if after else 1}", "LIMIT 21")
    literal = literal.replace("$1", "'2026-11-30 12:00:00.000000'").replace("$2", "'sesn_x'")
    if database.raw.on_sqlite:
        rows = (await db.execute(sqltext(f"EXPLAIN QUERY PLAN {literal}"))).all()
        plan = " ".join(str(row[-1]) for row in rows)
    else:  # a table this small would be scanned: ask whether the index serves the statement
        await db.execute(sqltext("SET LOCAL enable_seqscan = off"))
        rows = (await db.execute(sqltext(f"EXPLAIN {literal}"))).all()
        plan = " ".join(str(row[0]) for row in rows)
    assert "ix_sessions_listed" in plan, plan
    assert "TEMP B-TREE" not in plan and "Sort" not in plan, plan
