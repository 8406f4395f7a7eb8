"""Memory versions through the real SDK (strict), on each backend: history, filters, redaction."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import anthropic
import pytest
from anthropic.types.beta import BetaManagedAgentsMemoryStore

from app.apikeys import service as apikeys
from app.db.engine import Database
from tests.support.clients import strict_client
from tests.support.server import ServerThread


@pytest.fixture
def store(client: anthropic.Anthropic) -> BetaManagedAgentsMemoryStore:
    return client.beta.memory_stores.create(name=f"history-{uuid.uuid4().hex[:8]}")


@pytest.fixture
def stored_key_client(
    mas_server: ServerThread, database_url: str
) -> Iterator[tuple[anthropic.Anthropic, str]]:
    """A client authenticated with a key made by `mas keys create`, and that key's id."""

    async def make() -> tuple[str, str]:
        database = Database(database_url)
        try:
            async with database.unit_of_work() as db:
                row, secret = await apikeys.create(db, "memory tests")
                return row.id, secret
        finally:
            await database.dispose()

    key_id, secret = asyncio.run(make())
    with strict_client(mas_server.url, secret) as sdk:
        yield sdk, key_id


def test_every_change_is_a_version_newest_first(
    client: anthropic.Anthropic, store: BetaManagedAgentsMemoryStore
) -> None:
    api = client.beta.memory_stores.memories
    memory = api.create(store.id, path="/a.md", content="one")
    api.update(memory.id, memory_store_id=store.id, content="two")
    api.delete(memory.id, memory_store_id=store.id)

    listed = list(client.beta.memory_stores.memory_versions.list(store.id, memory_id=memory.id))

    assert [v.operation for v in listed] == ["deleted", "modified", "created"]
    deleted, modified, created = listed
    assert created.id == memory.memory_version_id and created.memory_id == memory.id
    assert (deleted.path, deleted.content, deleted.content_sha256, deleted.content_size_bytes) == (
        "/a.md",
        None,
        None,
        None,
    )
    assert modified.content is None and modified.content_size_bytes == 3  # list defaults to view=basic
    full = client.beta.memory_stores.memory_versions.retrieve(modified.id, memory_store_id=store.id)
    assert full.content == "two" and full.memory_store_id == store.id
    basic = client.beta.memory_stores.memory_versions.retrieve(
        modified.id, memory_store_id=store.id, view="basic"
    )
    assert basic.content is None and basic.content_sha256 == full.content_sha256


def test_versions_name_the_api_key_that_wrote_them(
    client: anthropic.Anthropic,
    store: BetaManagedAgentsMemoryStore,
    stored_key_client: tuple[anthropic.Anthropic, str],
) -> None:
    other, key_id = stored_key_client
    mine = client.beta.memory_stores.memories.create(store.id, path="/static.md", content="")
    theirs = other.beta.memory_stores.memories.create(store.id, path="/stored.md", content="")
    versions = client.beta.memory_stores.memory_versions

    by_them = versions.list(store.id, api_key_id=key_id).data
    static_id = versions.retrieve(mine.memory_version_id, memory_store_id=store.id).created_by.api_key_id  # type: ignore[union-attr]

    assert [v.id for v in by_them] == [theirs.memory_version_id]
    assert by_them[0].created_by is not None and by_them[0].created_by.type == "api_actor"
    assert key_id.startswith("apikey_") and static_id.startswith("apikey_static_")
    assert [v.id for v in versions.list(store.id, api_key_id=static_id)] == [mine.memory_version_id]


def test_filters_pages_and_views(client: anthropic.Anthropic, store: BetaManagedAgentsMemoryStore) -> None:
    api = client.beta.memory_stores.memories
    start = datetime.now(UTC) - timedelta(seconds=1)
    made = [api.create(store.id, path=f"/n{i}.md", content=f"n{i}") for i in range(23)]
    api.update(made[0].id, memory_store_id=store.id, content="changed")
    versions = client.beta.memory_stores.memory_versions

    first = versions.list(store.id, limit=2)
    full = versions.list(store.id, view="full", limit=100)

    assert [v.operation for v in first.data] == ["modified", "created"] and first.next_page
    assert len(list(versions.list(store.id, limit=5))) == 24
    assert len(full.data) == 20 and all(v.content is not None for v in full.data) and full.next_page
    assert [v.memory_id for v in versions.list(store.id, operation="modified")] == [made[0].id]
    assert versions.list(store.id, session_id="sesn_none").data == []
    assert versions.list(store.id, service_account_id="svac_any").data == []
    assert len(list(versions.list(store.id, created_at_gte=start))) == 24
    assert versions.list(store.id, created_at_lte=start).data == []
    with pytest.raises(
        anthropic.BadRequestError, match="operation: expected one of created, modified, deleted"
    ):
        versions.list(store.id, operation="renamed")  # type: ignore[arg-type]


def test_redaction(client: anthropic.Anthropic, store: BetaManagedAgentsMemoryStore) -> None:
    api = client.beta.memory_stores.memories
    versions = client.beta.memory_stores.memory_versions
    memory = api.create(store.id, path="/secret.md", content="api key: sk-123")
    fixed = api.update(memory.id, memory_store_id=store.id, content="(removed)")

    with pytest.raises(anthropic.BadRequestError) as current:
        versions.redact(fixed.memory_version_id, memory_store_id=store.id)
    redacted = versions.redact(memory.memory_version_id, memory_store_id=store.id)
    again = versions.redact(memory.memory_version_id, memory_store_id=store.id)

    assert "is the current version of memory" in str(current.value)
    assert (redacted.content, redacted.content_sha256, redacted.content_size_bytes, redacted.path) == (
        None,
        None,
        None,
        None,
    )
    assert redacted.redacted_at is not None and redacted.redacted_by is not None
    assert redacted.redacted_by.type == "api_actor"
    assert redacted.created_by is not None and redacted.created_by.type == "api_actor"  # kept
    assert again.redacted_at == redacted.redacted_at
    assert versions.retrieve(memory.memory_version_id, memory_store_id=store.id).content is None
    api.delete(memory.id, memory_store_id=store.id)
    assert versions.redact(fixed.memory_version_id, memory_store_id=store.id).redacted_at is not None
    archived = client.beta.memory_stores.archive(store.id)
    assert archived.archived_at is not None
    deleted = versions.list(store.id, operation="deleted").data[0]
    assert versions.redact(deleted.id, memory_store_id=store.id).path is None  # archived stores redact too


def test_unknown_versions_are_404(client: anthropic.Anthropic, store: BetaManagedAgentsMemoryStore) -> None:
    with pytest.raises(anthropic.NotFoundError, match="Memory version memver_missing not found"):
        client.beta.memory_stores.memory_versions.retrieve("memver_missing", memory_store_id=store.id)
    with pytest.raises(anthropic.NotFoundError):
        client.beta.memory_stores.memory_versions.redact("memver_missing", memory_store_id=store.id)
