"""What a session's mount writes back (app/memory_stores/sync.py), on each backend: writes attributed
to the session, stale writes kept as conflict versions instead of clobbering or being dropped."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence

import anthropic
import pytest
from anthropic.types.beta import BetaManagedAgentsMemoryStore

from app.db.engine import Database
from app.memory_stores import sync
from app.memory_stores.sync import SessionWrite, SyncOutcome

SESSION = "sesn_sync_test"


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@pytest.fixture
def store(client: anthropic.Anthropic) -> BetaManagedAgentsMemoryStore:
    return client.beta.memory_stores.create(name=f"mounted-{uuid.uuid4().hex[:8]}")


async def _sync(database: Database, store_id: str, *writes: SessionWrite) -> list[SyncOutcome]:
    async with database.unit_of_work() as db:
        return await sync.apply_session_writes(db, store_id, SESSION, writes)


async def test_mounted_memories_are_every_memory_in_path_order(
    client: anthropic.Anthropic, store: BetaManagedAgentsMemoryStore, database: Database
) -> None:
    for path in ["/z.md", "/a/b.md", "/a.md", "/m/n/o.md", "/b.md"]:
        client.beta.memory_stores.memories.create(store.id, path=path, content=f"at {path}")

    async with database.read() as db:
        mounted = [m async for m in sync.mounted_memories(db, store.id, batch=2)]

    assert [m.path for m in mounted] == ["/a.md", "/a/b.md", "/b.md", "/m/n/o.md", "/z.md"]
    assert all(m.content == f"at {m.path}" and m.content_sha256 == _sha(m.content) for m in mounted)


async def test_writes_based_on_current_content_apply_as_the_session(
    client: anthropic.Anthropic, store: BetaManagedAgentsMemoryStore, database: Database
) -> None:
    api = client.beta.memory_stores.memories
    notes = api.create(store.id, path="/notes.md", content="v1")
    gone = api.create(store.id, path="/gone.md", content="bye")

    outcomes = await _sync(
        database,
        store.id,
        SessionWrite("/notes.md", "v2", _sha("v1")),
        SessionWrite("/new/idea.md", "fresh", None),
        SessionWrite("/gone.md", None, _sha("bye")),
        SessionWrite("/notes.md", "v3", _sha("v2")),  # a later write of the batch sees the earlier one
    )

    assert [o.status for o in outcomes] == ["applied"] * 4
    assert api.retrieve(notes.id, memory_store_id=store.id).content == "v3"
    assert api.retrieve(outcomes[1].memory_id or "", memory_store_id=store.id).path == "/new/idea.md"
    with pytest.raises(anthropic.NotFoundError):
        api.retrieve(gone.id, memory_store_id=store.id)
    by_session = list(client.beta.memory_stores.memory_versions.list(store.id, session_id=SESSION))
    assert sorted(v.operation for v in by_session) == ["created", "deleted", "modified", "modified"]
    assert all(v.created_by is not None and v.created_by.type == "session_actor" for v in by_session)
    assert by_session[0].created_by.session_id == SESSION  # type: ignore[union-attr]


async def test_a_stale_write_is_kept_as_a_conflict_and_never_clobbers(
    client: anthropic.Anthropic, store: BetaManagedAgentsMemoryStore, database: Database
) -> None:
    api = client.beta.memory_stores.memories
    memory = api.create(store.id, path="/plan.md", content="mounted")
    by_api = api.update(memory.id, memory_store_id=store.id, content="changed through the API")

    [outcome] = await _sync(database, store.id, SessionWrite("/plan.md", "the agent's edit", _sha("mounted")))

    current = api.retrieve(memory.id, memory_store_id=store.id)
    kept = client.beta.memory_stores.memory_versions.retrieve(
        outcome.memory_version_id or "", memory_store_id=store.id
    )
    assert outcome.status == "conflict" and outcome.memory_id == memory.id
    assert (current.content, current.memory_version_id) == (
        "changed through the API",
        by_api.memory_version_id,
    )
    assert (kept.content, kept.operation, kept.memory_id) == ("the agent's edit", "modified", memory.id)
    assert kept.created_by is not None and kept.created_by.type == "session_actor"
    assert outcome.message is not None and outcome.memory_version_id is not None
    assert outcome.memory_version_id in outcome.message


async def test_delete_and_create_conflicts(
    client: anthropic.Anthropic, store: BetaManagedAgentsMemoryStore, database: Database
) -> None:
    api = client.beta.memory_stores.memories
    edited = api.create(store.id, path="/edited.md", content="old")
    api.update(edited.id, memory_store_id=store.id, content="new")
    raced = api.create(store.id, path="/raced.md", content="the API was first")
    blocker = api.create(store.id, path="/dir", content="a file")

    outcomes = await _sync(
        database,
        store.id,
        SessionWrite("/edited.md", None, _sha("old")),  # deletes what it saw; the API changed it since
        SessionWrite("/raced.md", "the session too", None),  # created where the API just created one
        SessionWrite("/dir/child.md", "x", None),  # /dir became a memory meanwhile
        SessionWrite("/raced.md", "the API was first", _sha("other")),  # same content already there
    )

    assert [o.status for o in outcomes] == ["conflict", "conflict", "conflict", "unchanged"]
    assert api.retrieve(edited.id, memory_store_id=store.id).content == "new"
    assert outcomes[0].memory_id == edited.id and outcomes[1].memory_id == raced.id
    assert api.retrieve(raced.id, memory_store_id=store.id).content == "the API was first"
    assert "/dir is a memory, so it cannot also be a directory" in (outcomes[2].message or "")
    assert [m.path for m in api.list(store.id)] == ["/dir", "/edited.md", "/raced.md"]
    versions = client.beta.memory_stores.memory_versions
    kept = [versions.retrieve(o.memory_version_id or "", memory_store_id=store.id) for o in outcomes[:3]]
    assert [(v.operation, v.content) for v in kept] == [
        ("deleted", None),
        ("modified", "the session too"),
        ("created", "x"),
    ]
    assert blocker.id not in {v.memory_id for v in kept}


async def test_unstorable_writes_are_rejected_without_a_version(
    client: anthropic.Anthropic, store: BetaManagedAgentsMemoryStore, database: Database
) -> None:
    outcomes = await _sync(
        database,
        store.id,
        SessionWrite("/big.md", "x" * 102_401, None),
        SessionWrite("/bad\u2028name.md", "x", None),
        SessionWrite("/fine.md", "ok", None),
    )

    assert [o.status for o in outcomes] == ["rejected", "rejected", "applied"]
    assert "over the 102,400-byte limit" in (outcomes[0].message or "")
    assert "line separators are not allowed" in (outcomes[1].message or "")
    assert len(client.beta.memory_stores.memory_versions.list(store.id).data) == 1


async def test_an_archived_store_takes_no_writes(
    client: anthropic.Anthropic, store: BetaManagedAgentsMemoryStore, database: Database
) -> None:
    client.beta.memory_stores.archive(store.id)

    outcomes: Sequence[SyncOutcome] = await _sync(database, store.id, SessionWrite("/x.md", "x", None))

    assert [(o.status, o.message) for o in outcomes] == [("rejected", f"memory store {store.id} is archived")]
    assert client.beta.memory_stores.memories.list(store.id).data == []
