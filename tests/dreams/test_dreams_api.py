"""/v1/dreams through the real SDK (strict), on each backend.

The shared test server runs no dreams (``MAS_DREAMS_POLL_SECONDS=0``), so a created dream stays
pending; the runner's transitions are made here directly (``test_dream_runs`` runs real ones).
"""

from __future__ import annotations

import uuid
from typing import Any

import anthropic
import pytest
from anthropic.types.beta import BetaDream

from app.db.engine import Database
from app.dreams import service
from app.dreams.schemas import DreamCreate, DreamUsage
from tests.support.factories import make_session


def _message(exc: pytest.ExceptionInfo[anthropic.APIStatusError]) -> str:
    return str(exc.value.body["error"]["message"])  # type: ignore[index]


def _inputs(store_id: str, *session_ids: str) -> list[Any]:
    return [
        {"type": "memory_store", "memory_store_id": store_id},
        {"type": "sessions", "session_ids": list(session_ids)},
    ]


@pytest.fixture
def sources(client: anthropic.Anthropic) -> tuple[str, list[str]]:
    store = client.beta.memory_stores.create(name=f"dream-{uuid.uuid4().hex[:8]}")
    return store.id, sorted(make_session(client).id for _ in range(2))


async def _enqueue(database: Database, store_id: str, session_ids: list[str], **params: Any) -> str:
    body = DreamCreate.model_validate(
        {"inputs": _inputs(store_id, *session_ids), "model": "claude-opus-4-8", **params}
    )
    async with database.unit_of_work() as db:
        return (await service.enqueue(db, await service.plan(db, body))).id


def test_create_queues_a_pending_dream(client: anthropic.Anthropic, sources: tuple[str, list[str]]) -> None:
    store_id, session_ids = sources

    dream = client.beta.dreams.create(inputs=_inputs(store_id, *session_ids), model="claude-opus-4-8")

    assert (dream.status, dream.outputs, dream.session_id, dream.ended_at) == ("pending", [], None, None)
    assert client.beta.dreams.retrieve(dream.id) == dream
    assert dream.id in [d.id for d in client.beta.dreams.list(limit=100)]


@pytest.mark.parametrize(
    ("change", "error", "message"),
    [
        (
            {"inputs": "only_store"},
            anthropic.BadRequestError,
            "inputs: give exactly one `memory_store` entry",
        ),
        ({"store": "memstore_missing"}, anthropic.NotFoundError, "inputs[0].memory_store_id: Memory store"),
        (
            {"sessions": ["sesn_missing"]},
            anthropic.NotFoundError,
            "inputs[1].session_ids[0]: Session sesn_missing",
        ),
        ({"sessions": "twice"}, anthropic.BadRequestError, "inputs[1].session_ids[1]: session"),
        (
            {"sessions": []},
            anthropic.BadRequestError,
            "inputs[1].session_ids: List should have at least 1 item",
        ),
        (
            {"model": {"id": "claude-opus-4-8", "speed": "fast"}},
            anthropic.BadRequestError,
            "model.speed: dreams",
        ),
        (
            {"instructions": ""},
            anthropic.BadRequestError,
            "instructions: String should have at least 1 character",
        ),
        (
            {"instructions": "i" * 4097},
            anthropic.BadRequestError,
            "instructions: String should have at most 4096",
        ),
        (
            {"instructions": "a\x00b"},
            anthropic.BadRequestError,
            "instructions: NUL characters are not allowed",
        ),
        ({"model": "claude\x00"}, anthropic.BadRequestError, "model: NUL characters are not allowed"),
        (
            {"output_behavior": {"type": "update_existing", "memory_store_id": "memstore_other"}},
            anthropic.BadRequestError,
            "output_behavior.memory_store_id: must be the memory store of the `memory_store` input",
        ),
    ],
)
def test_bad_requests(
    client: anthropic.Anthropic,
    sources: tuple[str, list[str]],
    change: dict[str, Any],
    error: type[anthropic.APIStatusError],
    message: str,
) -> None:
    store_id, session_ids = sources
    change = dict(change)  # the parameters are shared by both backends' runs
    store_id = change.pop("store", store_id)
    sessions = change.pop("sessions", session_ids)
    sessions = [session_ids[0], session_ids[0]] if sessions == "twice" else sessions
    inputs = _inputs(store_id, *sessions)
    if change.pop("inputs", None) == "only_store":
        inputs = inputs[:1]
    params: dict[str, Any] = {"inputs": inputs, "model": "claude-opus-4-8", **change}

    with pytest.raises(error) as exc:
        client.beta.dreams.create(**params)

    assert _message(exc).startswith(message)


def test_an_archived_store_cannot_be_dreamt_about(
    client: anthropic.Anthropic, sources: tuple[str, list[str]]
) -> None:
    store_id, session_ids = sources
    client.beta.memory_stores.archive(store_id)

    with pytest.raises(anthropic.BadRequestError, match=f"memory store {store_id} is archived"):
        client.beta.dreams.create(inputs=_inputs(store_id, *session_ids), model="claude-opus-4-8")


async def test_a_pending_dream_as_clients_see_it(
    client: anthropic.Anthropic, sources: tuple[str, list[str]], database: Database
) -> None:
    store_id, session_ids = sources
    dream_id = await _enqueue(database, store_id, session_ids[::-1], instructions="Keep it short.")

    dream: BetaDream = client.beta.dreams.retrieve(dream_id)

    assert dream.id.startswith("drm_") and (dream.type, dream.status) == ("dream", "pending")
    assert [i.model_dump() for i in dream.inputs] == [
        {"type": "memory_store", "memory_store_id": store_id},
        {"type": "sessions", "session_ids": session_ids},  # sorted
    ]
    assert dream.model.model_dump() == {"id": "claude-opus-4-8", "speed": "standard"}
    assert dream.output_behavior.type == "create_new" and dream.outputs == []
    assert dream.usage.model_dump() == {
        "input_tokens": 0,
        "output_tokens": 0,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
    }
    assert (dream.instructions, dream.session_id, dream.error, dream.ended_at) == (
        "Keep it short.",
        None,
        None,
        None,
    )


async def test_cancel_and_archive_rules(
    client: anthropic.Anthropic, sources: tuple[str, list[str]], database: Database
) -> None:
    store_id, session_ids = sources
    dream_id = await _enqueue(database, store_id, session_ids)

    with pytest.raises(anthropic.BadRequestError, match="is pending; cancel it before archiving it"):
        client.beta.dreams.archive(dream_id)
    canceled = client.beta.dreams.cancel(dream_id)
    again = client.beta.dreams.cancel(dream_id)
    archived = client.beta.dreams.archive(dream_id)

    assert canceled.status == "canceled" and canceled.ended_at is not None and again == canceled
    assert archived.archived_at is not None and client.beta.dreams.archive(dream_id) == archived
    assert dream_id not in [d.id for d in client.beta.dreams.list(limit=100)]
    assert dream_id in [d.id for d in client.beta.dreams.list(include_archived=True, limit=100)]
    with pytest.raises(anthropic.NotFoundError):
        client.beta.dreams.cancel("drm_missing")


async def test_the_runner_transitions(
    client: anthropic.Anthropic, sources: tuple[str, list[str]], database: Database
) -> None:
    store_id, session_ids = sources
    output = client.beta.memory_stores.create(name="dream output").id
    done_id = await _enqueue(database, store_id, session_ids)
    failed_id = await _enqueue(database, store_id, session_ids)
    async with database.unit_of_work() as db:
        assert await service.start(db, done_id, session_ids[0])
        assert not await service.start(db, done_id, session_ids[0])  # already running
        await service.record_output(db, done_id, output)
        await service.add_usage(db, done_id, DreamUsage(input_tokens=10, output_tokens=5))
        await service.add_usage(db, done_id, DreamUsage(input_tokens=1, cache_read_input_tokens=7))
        assert await service.finish(db, done_id)
        assert await service.start(db, failed_id, session_ids[1])
        assert await service.finish(db, failed_id, ("timeout", "the dream ran out of time"))

    done, failed = client.beta.dreams.retrieve(done_id), client.beta.dreams.retrieve(failed_id)

    assert (done.status, done.session_id, done.ended_at is not None) == ("completed", session_ids[0], True)
    assert [o.memory_store_id for o in done.outputs] == [output]
    assert (done.usage.input_tokens, done.usage.output_tokens, done.usage.cache_read_input_tokens) == (
        11,
        5,
        7,
    )
    assert failed.status == "failed" and failed.error is not None
    assert (failed.error.type, failed.error.message) == ("timeout", "the dream ran out of time")
    with pytest.raises(anthropic.BadRequestError, match="has already completed"):
        client.beta.dreams.cancel(done_id)


async def test_a_cancel_wins_over_a_late_finish(
    client: anthropic.Anthropic, sources: tuple[str, list[str]], database: Database
) -> None:
    store_id, session_ids = sources
    dream_id = await _enqueue(database, store_id, session_ids)
    async with database.unit_of_work() as db:
        await service.start(db, dream_id, session_ids[0])
    client.beta.dreams.cancel(dream_id)

    async with database.unit_of_work() as db:
        finished = await service.finish(db, dream_id)
        await service.add_usage(db, dream_id, DreamUsage(output_tokens=3))

    dream = client.beta.dreams.retrieve(dream_id)
    assert not finished and dream.status == "canceled" and dream.usage.output_tokens == 3


async def test_one_in_place_dream_per_store(
    client: anthropic.Anthropic, sources: tuple[str, list[str]], database: Database
) -> None:
    store_id, session_ids = sources
    in_place = {"type": "update_existing", "memory_store_id": store_id}
    dream_id = await _enqueue(database, store_id, session_ids, output_behavior=in_place)

    with pytest.raises(
        anthropic.ConflictError, match=f"Another dream is still updating memory store {store_id}"
    ):
        client.beta.dreams.create(inputs=_inputs(store_id, *session_ids), model="m", output_behavior=in_place)  # type: ignore[arg-type]
    client.beta.dreams.cancel(dream_id)
    inputs = _inputs(store_id, *session_ids)
    again = client.beta.dreams.create(inputs=inputs, model="m", output_behavior=in_place)  # type: ignore[arg-type]
    assert again.status == "pending" and again.output_behavior.type == "update_existing"


async def test_list_filters_and_pages(
    client: anthropic.Anthropic, sources: tuple[str, list[str]], database: Database
) -> None:
    store_id, session_ids = sources
    made = [await _enqueue(database, store_id, session_ids) for _ in range(3)]
    client.beta.dreams.cancel(made[0])
    created_at = client.beta.dreams.retrieve(made[1]).created_at

    first = client.beta.dreams.list(limit=2)
    canceled = [d.id for d in client.beta.dreams.list(statuses=["canceled"], limit=100)]
    pending = [d.id for d in client.beta.dreams.list(statuses=["pending", "running"], limit=100)]
    after = [d.id for d in client.beta.dreams.list(created_at_gt=created_at, limit=100)]
    before = [d.id for d in client.beta.dreams.list(created_at_lt=created_at, limit=100)]

    assert [d.id for d in first.data] == [made[2], made[1]] and first.next_page
    assert made[0] in canceled and made[1] not in canceled
    assert {made[1], made[2]} <= set(pending) and made[0] not in pending
    assert made[2] in after and made[1] not in after and made[0] in before
    with pytest.raises(anthropic.BadRequestError, match="statuses: 'done' is not one of"):
        client.beta.dreams.list(statuses=["done"])  # type: ignore[list-item]
