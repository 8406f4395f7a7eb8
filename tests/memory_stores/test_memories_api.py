"""Memories through the real SDK (strict), on each backend: paths, preconditions, conflicts, limits,
views and listing."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

import anthropic
import httpx
import pytest
from anthropic.types.beta import BetaManagedAgentsMemoryStore
from sqlalchemy import insert

from app.db.engine import Database
from app.db.models import Memory
from app.memory_stores import memories


@pytest.fixture
def store(client: anthropic.Anthropic) -> BetaManagedAgentsMemoryStore:
    return client.beta.memory_stores.create(name=f"notes-{uuid.uuid4().hex[:8]}")


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _error(exc: pytest.ExceptionInfo[anthropic.APIStatusError]) -> dict[str, object]:
    return exc.value.body["error"]  # type: ignore[index,no-any-return]


def test_create_retrieve_views(client: anthropic.Anthropic, store: BetaManagedAgentsMemoryStore) -> None:
    api = client.beta.memory_stores.memories

    created = api.create(store.id, path="/projects/mas/notes.md", content="héllo")
    full = api.retrieve(created.id, memory_store_id=store.id)
    basic = api.retrieve(created.id, memory_store_id=store.id, view="basic")
    echoed = api.create(store.id, path="/empty.md", content="", view="full")

    assert created.id.startswith("mem_") and created.memory_version_id.startswith("memver_")
    assert created.content is None  # create answers with view=basic by default
    assert (created.content_sha256, created.content_size_bytes) == (_sha("héllo"), 6)
    assert full.content == "héllo" and basic.content is None and basic.content_sha256 == full.content_sha256
    assert echoed.content == "" and echoed.content_sha256 == _sha("")


def test_update_content_and_rename_keep_the_id(
    client: anthropic.Anthropic, store: BetaManagedAgentsMemoryStore
) -> None:
    api = client.beta.memory_stores.memories
    memory = api.create(store.id, path="/a.md", content="one")

    unchanged = api.update(memory.id, memory_store_id=store.id, content="one", path="/a.md")
    renamed = api.update(memory.id, memory_store_id=store.id, path="/archive/a.md")
    edited = api.update(memory.id, memory_store_id=store.id, content="two", view="full")

    assert unchanged.memory_version_id == memory.memory_version_id  # nothing changed, no version
    assert (renamed.id, renamed.path, renamed.content_sha256) == (memory.id, "/archive/a.md", _sha("one"))
    assert renamed.memory_version_id != memory.memory_version_id
    assert (edited.content, edited.path) == ("two", "/archive/a.md")
    versions = client.beta.memory_stores.memory_versions.list(store.id, memory_id=memory.id)
    assert [(v.operation, v.path) for v in versions] == [
        ("modified", "/archive/a.md"),
        ("modified", "/archive/a.md"),
        ("created", "/a.md"),
    ]


def test_preconditions(client: anthropic.Anthropic, store: BetaManagedAgentsMemoryStore) -> None:
    api = client.beta.memory_stores.memories
    memory = api.create(store.id, path="/prefs.md", content="tabs")
    current = {"type": "content_sha256", "content_sha256": memory.content_sha256}

    updated = api.update(memory.id, memory_store_id=store.id, content="spaces", precondition=current)  # type: ignore[arg-type]
    with pytest.raises(anthropic.ConflictError) as exc:
        api.update(memory.id, memory_store_id=store.id, content="tabs again", precondition=current)  # type: ignore[arg-type]
    with pytest.raises(anthropic.ConflictError) as delete_exc:
        api.delete(memory.id, memory_store_id=store.id, expected_content_sha256=memory.content_sha256)

    assert updated.content_sha256 == _sha("spaces")
    assert _error(exc)["type"] == "memory_precondition_failed_error"
    assert exc.value.response.headers["x-should-retry"] == "false"
    assert _error(delete_exc)["type"] == "memory_precondition_failed_error"
    assert "nothing was deleted" in str(_error(delete_exc)["message"])
    assert api.retrieve(memory.id, memory_store_id=store.id).content == "spaces"
    api.delete(memory.id, memory_store_id=store.id, expected_content_sha256=_sha("spaces"))
    with pytest.raises(anthropic.NotFoundError):
        api.retrieve(memory.id, memory_store_id=store.id)


def test_occupied_paths_are_409_naming_the_memory(
    client: anthropic.Anthropic, store: BetaManagedAgentsMemoryStore
) -> None:
    api = client.beta.memory_stores.memories
    taken = api.create(store.id, path="/a/b.md", content="")
    other = api.create(store.id, path="/c.md", content="")

    cases: list[tuple[Callable[[], object], str]] = [
        (lambda: api.create(store.id, path="/a/b.md", content="x"), "/a/b.md is already taken"),
        (lambda: api.update(other.id, memory_store_id=store.id, path="/a/b.md"), "/a/b.md is already taken"),
        (lambda: api.create(store.id, path="/a/b.md/c.md", content="x"), "/a/b.md is a memory, so it cannot"),
        (lambda: api.create(store.id, path="/a", content="x"), "/a is a directory holding memory /a/b.md"),
    ]
    for call, message in cases:
        with pytest.raises(anthropic.ConflictError) as exc:
            call()
        error = _error(exc)
        assert error["type"] == "memory_path_conflict_error" and message in str(error["message"])
        assert error["details"] == {"conflicting_memory_id": taken.id}
        assert exc.value.response.headers["x-should-retry"] == "false"


BAD_PATHS = [
    ("notes.md", "path: must start with '/'"),
    ("", "path: must not be empty"),
    ("/", "path: segments cannot be empty"),
    ("/a//b", "path: segments cannot be empty"),
    ("/a/", "path: segments cannot be empty"),
    ("/a/../b", "path: segments cannot be empty, '.' or '..'"),
    ("/./b", "path: segments cannot be empty, '.' or '..'"),
    ("/" + "/".join("s" * 21), "path: at most 20 segments"),
    ("/" + "é" * 512, "path: at most 1024 bytes"),
    ("/a\tb", "path: control characters"),
    ("/a\u200bb", "path: control characters, format characters"),
    ("/a\u2028b", "path: control characters"),
    ("/cafe\u0301", "path: must be in Unicode Normalization Form C"),
]


@pytest.mark.parametrize(("path", "message"), BAD_PATHS)
def test_bad_paths_are_400(
    client: anthropic.Anthropic, store: BetaManagedAgentsMemoryStore, path: str, message: str
) -> None:
    with pytest.raises(anthropic.BadRequestError) as exc:
        client.beta.memory_stores.memories.create(store.id, path=path, content="x")

    assert str(_error(exc)["message"]).startswith(message)


def test_paths_at_the_limits_are_accepted(
    client: anthropic.Anthropic, store: BetaManagedAgentsMemoryStore
) -> None:
    api = client.beta.memory_stores.memories
    deep = "/" + "/".join(f"s{i}" for i in range(20))
    long = "/" + "é" * 511 + "x"

    assert api.create(store.id, path=deep, content="").path == deep
    assert api.create(store.id, path=long, content="").path == long
    assert api.create(store.id, path="/Notes/Case.md", content="").path == "/Notes/Case.md"
    assert api.create(store.id, path="/notes/case.md", content="").path == "/notes/case.md"  # case-sensitive


def test_content_size_limit(client: anthropic.Anthropic, store: BetaManagedAgentsMemoryStore) -> None:
    api = client.beta.memory_stores.memories
    at_limit = api.create(store.id, path="/big.md", content="x" * 102_400)

    with pytest.raises(anthropic.BadRequestError) as exc:
        api.create(store.id, path="/bigger.md", content="é" * 51_201)
    with pytest.raises(anthropic.BadRequestError) as update_exc:
        api.update(at_limit.id, memory_store_id=store.id, content="x" * 102_401)

    assert at_limit.content_size_bytes == 102_400
    assert _error(exc)["message"] == "content: 102,402 bytes is over the 102,400-byte limit of a memory"
    assert "102,401 bytes is over" in str(_error(update_exc)["message"])


def test_text_the_database_cannot_hold_is_400(
    client: anthropic.Anthropic, http: httpx.Client, store: BetaManagedAgentsMemoryStore
) -> None:
    with pytest.raises(anthropic.BadRequestError, match="content: NUL characters are not allowed"):
        client.beta.memory_stores.memories.create(store.id, path="/nul.md", content="a\x00b")
    # JSON can carry a lone surrogate; the SDK cannot encode one, so send the bytes ourselves.
    response = http.post(
        f"/v1/memory_stores/{store.id}/memories",
        content=b'{"path": "/s.md", "content": "\\ud800"}',
        headers={"content-type": "application/json"},
    )

    assert response.status_code == 400
    assert (
        response.json()["error"]["message"] == "content: not valid Unicode text (it holds a lone surrogate)"
    )


async def test_count_limit(
    client: anthropic.Anthropic, store: BetaManagedAgentsMemoryStore, database: Database
) -> None:
    # 1,999 rows written straight to the table (creating them one request at a time only makes the
    # suite slower), then the last two through the API.
    now = datetime.now(UTC)
    rows = [
        {
            "id": f"mem_bulk{i:04d}{uuid.uuid4().hex[:8]}",
            "memory_store_id": store.id,
            "path": f"/m/{i:04d}.md",
            "content": "",
            "content_sha256": _sha(""),
            "content_size_bytes": 0,
            "memory_version_id": "memver_bulk",
            "created_at": now,
            "updated_at": now,
        }
        for i in range(memories.MAX_MEMORIES - 1)
    ]
    async with database.unit_of_work() as db:
        await db.execute(insert(Memory), rows)
    last = client.beta.memory_stores.memories.create(store.id, path="/last.md", content="")

    with pytest.raises(anthropic.BadRequestError) as exc:
        client.beta.memory_stores.memories.create(store.id, path="/one-more.md", content="")

    assert (
        _error(exc)["message"] == f"Memory store {store.id} holds 2,000 memories, the most a store can hold."
    )
    client.beta.memory_stores.memories.delete(last.id, memory_store_id=store.id)
    assert (
        client.beta.memory_stores.memories.create(store.id, path="/one-more.md", content="").path
        == "/one-more.md"
    )


def test_list_in_path_order_with_depth_and_prefix(
    client: anthropic.Anthropic, store: BetaManagedAgentsMemoryStore
) -> None:
    api = client.beta.memory_stores.memories
    for path in ["/b.md", "/a/x.md", "/a/y/z.md", "/a.md", "/notes/todo.md", "/notes-archive/old.md"]:
        api.create(store.id, path=path, content=path)

    def listed(**params: object) -> list[tuple[str, str]]:
        return [(item.type, item.path) for item in api.list(store.id, **params)]  # type: ignore[arg-type]

    assert listed() == [
        ("memory", "/a.md"),
        ("memory", "/a/x.md"),
        ("memory", "/a/y/z.md"),
        ("memory", "/b.md"),
        ("memory", "/notes-archive/old.md"),
        ("memory", "/notes/todo.md"),
    ]
    assert listed(depth=1) == [
        ("memory", "/a.md"),
        ("memory_prefix", "/a/"),
        ("memory", "/b.md"),
        ("memory_prefix", "/notes-archive/"),
        ("memory_prefix", "/notes/"),
    ]
    assert listed(path_prefix="/a/", depth=1) == [("memory", "/a/x.md"), ("memory_prefix", "/a/y/")]
    assert listed(path_prefix="/notes/") == [("memory", "/notes/todo.md")]  # whole segments only
    assert listed(path_prefix="/nothing/") == []


def test_list_pages_and_views(client: anthropic.Anthropic, store: BetaManagedAgentsMemoryStore) -> None:
    api = client.beta.memory_stores.memories
    for i in range(25):
        api.create(store.id, path=f"/d{i % 3}/m{i:02d}.md", content=f"memory {i}")

    first = api.list(store.id, limit=2, depth=1)
    full = api.list(store.id, limit=100, view="full")
    every = list(api.list(store.id, limit=7))

    assert [i.path for i in first.data] == ["/d0/", "/d1/"] and first.next_page
    assert [i.path for i in api.list(store.id, limit=2, depth=1, page=first.next_page).data] == ["/d2/"]
    assert len(full.data) == 20 and full.next_page  # view=full holds at most 20 per page
    assert all(m.content == f"memory {int(m.path[-5:-3])}" for m in full.data)  # type: ignore[union-attr]
    assert all(m.content is None for m in every) and len(every) == 25  # type: ignore[union-attr]
    assert [m.path for m in every] == sorted(m.path for m in every)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"path_prefix": "notes/"}, "path_prefix: must start and end with '/'"),
        ({"path_prefix": "/notes"}, "path_prefix: must start and end with '/'"),
        ({"path_prefix": "//"}, "path_prefix: segments cannot be empty"),
        ({"depth": -1}, "depth: Input should be greater than or equal to 0"),
        ({"limit": 101}, "limit: Input should be less than or equal to 100"),
        ({"view": "everything"}, "view: Input should be 'basic' or 'full'"),
        ({"page": "page_garbage"}, "invalid page cursor"),
    ],
)
def test_bad_list_params_are_400(
    client: anthropic.Anthropic, store: BetaManagedAgentsMemoryStore, params: dict[str, object], message: str
) -> None:
    with pytest.raises(anthropic.BadRequestError) as exc:
        client.beta.memory_stores.memories.list(store.id, **params)  # type: ignore[arg-type]

    assert str(_error(exc)["message"]).startswith(message)


def test_bad_preconditions_and_unknown_memories(
    client: anthropic.Anthropic, store: BetaManagedAgentsMemoryStore
) -> None:
    api = client.beta.memory_stores.memories
    memory = api.create(store.id, path="/p.md", content="")
    other = client.beta.memory_stores.create(name="other")

    with pytest.raises(anthropic.BadRequestError, match=r"precondition\.content_sha256: String should match"):
        api.update(
            memory.id,
            memory_store_id=store.id,
            content="x",
            precondition={"type": "content_sha256", "content_sha256": "ABC"},
        )
    with pytest.raises(anthropic.BadRequestError, match="expected_content_sha256: must be 64 lowercase"):
        api.delete(memory.id, memory_store_id=store.id, expected_content_sha256="nope")
    with pytest.raises(
        anthropic.NotFoundError, match=f"Memory {memory.id} not found in memory store {other.id}"
    ):
        api.retrieve(memory.id, memory_store_id=other.id)
    with pytest.raises(anthropic.NotFoundError):
        api.update("mem_missing", memory_store_id=store.id, content="x")
