"""/v1/memory_stores through the real SDK (strict), on each backend: stores and the beta rules."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import anthropic
import httpx
import pytest

from app.memory_stores.paths import mount_path, mount_slug


def _name() -> str:
    return f"store-{uuid.uuid4().hex[:8]}"


def _message(exc: pytest.ExceptionInfo[anthropic.APIStatusError]) -> str:
    return str(exc.value.body["error"]["message"])  # type: ignore[index]


def test_create_retrieve_with_defaults(client: anthropic.Anthropic) -> None:
    store = client.beta.memory_stores.create(name="User Preferences")

    assert store.id.startswith("memstore_") and store.type == "memory_store"
    assert (store.name, store.description, store.metadata, store.archived_at) == (
        "User Preferences",
        "",
        {},
        None,
    )
    assert client.beta.memory_stores.retrieve(store.id) == store


def test_update_is_a_patch_and_only_real_changes_touch_updated_at(client: anthropic.Anthropic) -> None:
    store = client.beta.memory_stores.create(name=_name(), description="d", metadata={"a": "1", "b": "2"})

    same = client.beta.memory_stores.update(store.id, name=None)
    updated = client.beta.memory_stores.update(
        store.id, name="renamed", description="", metadata={"a": None, "c": "3"}
    )

    assert same == store
    assert (updated.name, updated.description, updated.metadata) == ("renamed", "", {"b": "2", "c": "3"})
    assert updated.updated_at > store.updated_at and updated.created_at == store.created_at


def test_archive_is_final_and_read_only(client: anthropic.Anthropic) -> None:
    store = client.beta.memory_stores.create(name=_name())
    memory = client.beta.memory_stores.memories.create(store.id, path="/keep.md", content="k")

    archived = client.beta.memory_stores.archive(store.id)
    again = client.beta.memory_stores.archive(store.id)

    assert archived.archived_at is not None and again.archived_at == archived.archived_at
    for call in (
        lambda: client.beta.memory_stores.update(store.id, name="x"),
        lambda: client.beta.memory_stores.memories.create(store.id, path="/new.md", content=""),
        lambda: client.beta.memory_stores.memories.update(memory.id, memory_store_id=store.id, content="x"),
    ):
        with pytest.raises(anthropic.BadRequestError, match="is archived: it is read-only"):
            call()
    assert client.beta.memory_stores.memories.retrieve(memory.id, memory_store_id=store.id).content == "k"
    client.beta.memory_stores.memories.delete(memory.id, memory_store_id=store.id)  # still allowed
    assert store.id not in [s.id for s in client.beta.memory_stores.list(limit=100)]
    assert store.id in [s.id for s in client.beta.memory_stores.list(include_archived=True, limit=100)]


def test_delete_removes_memories_and_versions(client: anthropic.Anthropic) -> None:
    store = client.beta.memory_stores.create(name=_name())
    client.beta.memory_stores.memories.create(store.id, path="/a.md", content="a")

    deleted = client.beta.memory_stores.delete(store.id)

    assert (deleted.id, deleted.type) == (store.id, "memory_store_deleted")
    with pytest.raises(anthropic.NotFoundError):
        client.beta.memory_stores.retrieve(store.id)
    with pytest.raises(anthropic.NotFoundError):
        client.beta.memory_stores.memory_versions.list(store.id)


def test_list_pages_newest_first_with_created_at_range(client: anthropic.Anthropic) -> None:
    before = datetime.now(UTC) - timedelta(seconds=1)
    made = [client.beta.memory_stores.create(name=_name()).id for _ in range(3)]

    first = client.beta.memory_stores.list(limit=2, created_at_gte=before)
    everything = [s.id for s in client.beta.memory_stores.list(limit=2, created_at_gte=before)]

    assert [s.id for s in first.data] == made[::-1][:2] and first.next_page
    assert everything[:3] == made[::-1]
    assert client.beta.memory_stores.list(created_at_lte=before - timedelta(days=365)).data == []


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"name": ""}, "name: String should have at least 1 character"),
        ({"name": "x" * 256}, "name: String should have at most 255 characters"),
        ({"name": "two\nlines"}, "name: control characters are not allowed"),
        ({"name": "n", "description": "d" * 1025}, "description: String should have at most 1024 characters"),
        ({"name": "n", "description": "a\x00b"}, "description: NUL characters are not allowed"),
        (
            {"name": "n", "metadata": {f"k{i}": "v" for i in range(17)}},
            "metadata: at most 16 key-value pairs",
        ),
        ({"name": "n", "metadata": {"k": "a\x00"}}, "metadata.k: NUL characters are not allowed"),
    ],
)
def test_bad_stores_are_400(client: anthropic.Anthropic, params: dict[str, object], message: str) -> None:
    with pytest.raises(anthropic.BadRequestError) as exc:
        client.beta.memory_stores.create(**params)  # type: ignore[arg-type]

    assert _message(exc).startswith(message)


def test_sending_both_betas_is_a_400(client: anthropic.Anthropic, http: httpx.Client) -> None:
    store = client.beta.memory_stores.create(name=_name())

    with pytest.raises(anthropic.BadRequestError) as exc:
        client.beta.memory_stores.retrieve(store.id, betas=["managed-agents-2026-04-01"])
    alone = http.get(f"/v1/memory_stores/{store.id}", headers={"anthropic-beta": "managed-agents-2026-04-01"})

    assert _message(exc) == (
        "anthropic-beta: send either agent-memory-2026-07-22 or managed-agents-2026-04-01 for memory stores, "
        "not both"
    )
    assert alone.status_code == 200 and alone.json()["id"] == store.id


def test_a_nul_in_the_url_is_a_400(http: httpx.Client) -> None:
    for url in ("/v1/memory_stores/memstore_%00", "/v1/memory_stores/m/memory_versions?session_id=sesn_%00"):
        response = http.get(url, headers={"anthropic-beta": "agent-memory-2026-07-22"})
        assert response.status_code == 400
        assert response.json()["error"]["message"].startswith("the URL holds a NUL character")


def test_unknown_store_is_404(client: anthropic.Anthropic) -> None:
    for call in (
        lambda: client.beta.memory_stores.retrieve("memstore_missing"),
        lambda: client.beta.memory_stores.update("memstore_missing", name="x"),
        lambda: client.beta.memory_stores.archive("memstore_missing"),
        lambda: client.beta.memory_stores.delete("memstore_missing"),
        lambda: client.beta.memory_stores.memories.list("memstore_missing"),
    ):
        with pytest.raises(anthropic.NotFoundError, match="Memory store memstore_missing not found"):
            call()


@pytest.mark.parametrize(
    ("name", "slug"),
    [
        ("User Preferences", "user-preferences"),
        ("team/Q3 -- notes!", "team-q3-notes-"),
        ("Ärger 2", "-rger-2"),
    ],
)
def test_mount_path_slug(name: str, slug: str) -> None:
    assert mount_slug(name) == slug and mount_path(name) == f"/mnt/memory/{slug}"
