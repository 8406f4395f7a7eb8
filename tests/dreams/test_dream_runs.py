"""Dreams run by a worker's dream runner with the offline model, through the strict SDK: the
model gets the store's memories and the sessions' transcripts and edits the output store with
write_memory/delete_memory (the offline model follows the `/tool` lines of the instructions);
statuses, outputs and usage as clients see them; a model error fails the dream."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anthropic
import pytest
from anthropic.types.beta import BetaDream

from tests.support.loop import TIMEOUT, loop_server, new_session, sdk, turn
from tests.support.server import ServerThread

MODEL = "claude-sonnet-4-6"


@pytest.fixture(scope="module")
def dream_server(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    yield from loop_server(backend, tmp_path_factory.mktemp(f"dreams-{backend}"), dreams_poll_seconds=0.2)


@pytest.fixture
async def client(dream_server: ServerThread) -> AsyncIterator[anthropic.AsyncAnthropic]:
    async with sdk(dream_server.url) as client:
        yield client


async def _finished(client: anthropic.AsyncAnthropic, dream_id: str) -> BetaDream:
    deadline = time.monotonic() + TIMEOUT
    while True:
        dream = await client.beta.dreams.retrieve(dream_id)
        if dream.status in ("completed", "failed", "canceled"):
            return dream
        assert time.monotonic() < deadline, f"dream {dream_id} still {dream.status}"
        await asyncio.sleep(0.2)


async def _contents(client: anthropic.AsyncAnthropic, store_id: str) -> dict[str, str | None]:
    page = await client.beta.memory_stores.memories.list(store_id, view="full", limit=20)
    return {m.path: m.content for m in page.data if m.type == "memory"}


def _tool(name: str, **arguments: str) -> str:
    return f"/tool {name} {json.dumps(arguments)}"


async def _sources(client: anthropic.AsyncAnthropic) -> tuple[str, str]:
    store = await client.beta.memory_stores.create(name="team")
    await client.beta.memory_stores.memories.create(store.id, path="/old.md", content="tea, maybe")
    await client.beta.memory_stores.memories.create(store.id, path="/keep.md", content="the build is green")
    session_id = await new_session(client)
    await turn(client, session_id, "I drink coffee now.")
    return store.id, session_id


def _inputs(store_id: str, session_id: str) -> list[Any]:
    return [
        {"type": "memory_store", "memory_store_id": store_id},
        {"type": "sessions", "session_ids": [session_id]},
    ]


async def test_a_dream_writes_a_new_store_and_leaves_its_input_alone(
    client: anthropic.AsyncAnthropic,
) -> None:
    store_id, session_id = await _sources(client)
    instructions = "\n".join(
        [
            _tool("write_memory", path="/prefs/drinks.md", content="coffee"),
            _tool("delete_memory", path="/old.md"),
        ]
    )

    created = await client.beta.dreams.create(
        inputs=_inputs(store_id, session_id), model=MODEL, instructions=instructions
    )
    dream = await _finished(client, created.id)

    assert (dream.status, dream.error, dream.ended_at is not None) == ("completed", None, True)
    (output,) = dream.outputs
    assert output.memory_store_id != store_id
    assert await _contents(client, output.memory_store_id) == {
        "/keep.md": "the build is green",
        "/prefs/drinks.md": "coffee",
    }
    assert await _contents(client, store_id) == {"/old.md": "tea, maybe", "/keep.md": "the build is green"}
    assert dream.usage.input_tokens > 0 and dream.usage.output_tokens > 0
    versions = await client.beta.memory_stores.memory_versions.list(output.memory_store_id)
    assert {v.operation for v in versions.data} == {"created", "deleted"}
    store = await client.beta.memory_stores.retrieve(output.memory_store_id)
    assert store.name.startswith("team (dream ") and created.id in store.description


async def test_an_in_place_dream_updates_its_input(client: anthropic.AsyncAnthropic) -> None:
    store_id, session_id = await _sources(client)

    created = await client.beta.dreams.create(
        inputs=_inputs(store_id, session_id),
        model=MODEL,
        instructions=_tool("write_memory", path="/old.md", content="coffee, not tea"),
        output_behavior={"type": "update_existing", "memory_store_id": store_id},
    )
    dream = await _finished(client, created.id)

    assert dream.status == "completed" and [o.memory_store_id for o in dream.outputs] == [store_id]
    assert (await _contents(client, store_id))["/old.md"] == "coffee, not tea"


async def test_a_model_error_fails_the_dream(client: anthropic.AsyncAnthropic) -> None:
    store_id, session_id = await _sources(client)

    created = await client.beta.dreams.create(
        inputs=_inputs(store_id, session_id), model=MODEL, instructions="/fault invalid"
    )
    dream = await _finished(client, created.id)

    assert dream.status == "failed" and dream.error is not None
    assert dream.error.type == "model_error" and "model request failed" in dream.error.message
