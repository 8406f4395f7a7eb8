"""Attaching memory stores to sessions through the strict SDK: the resource as documented (no id,
name and description snapshotted, the mount path from the name), and clear 4xx for bad input."""

from __future__ import annotations

import re
import uuid
from typing import Any

import anthropic
import pytest
from anthropic.types.beta.sessions import BetaManagedAgentsMemoryStoreResource

from tests.support.factories import MODEL


def _create(client: anthropic.Anthropic, *resources: dict[str, Any]) -> Any:
    agent = client.beta.agents.create(name="mounts", model=MODEL)
    environment = client.beta.environments.create(name=f"mounts-{agent.id[-8:]}")
    return client.beta.sessions.create(
        agent=agent.id,
        environment_id=environment.id,
        resources=list(resources),  # type: ignore[arg-type]
    )


def _store(client: anthropic.Anthropic, name: str | None = None) -> str:
    return client.beta.memory_stores.create(name=name or f"Notes {uuid.uuid4().hex[:6]}").id


def test_the_resource_snapshots_the_store_and_lists_without_an_id(client: anthropic.Anthropic) -> None:
    suffix = uuid.uuid4().hex[:6]
    store = client.beta.memory_stores.create(name=f"User Preferences {suffix}!")
    session = _create(
        client, {"type": "memory_store", "memory_store_id": store.id, "instructions": "Keep it short."}
    )
    client.beta.memory_stores.update(store.id, name="renamed")

    (listed,) = client.beta.sessions.resources.list(session.id).data
    for resource in (session.resources[0], listed):
        assert isinstance(resource, BetaManagedAgentsMemoryStoreResource)
        assert resource.mount_path == f"/mnt/memory/user-preferences-{suffix}-"
        assert (resource.name, resource.description) == (f"User Preferences {suffix}!", "")
        assert (resource.access, resource.instructions) == ("read_write", "Keep it short.")


@pytest.mark.parametrize(
    ("resource", "error", "message"),
    [
        ({"memory_store_id": "memstore_nope"}, anthropic.NotFoundError, "resources[0].memory_store_id"),
        ({"access": "write_only"}, anthropic.BadRequestError, "access: Input should be"),
        ({"instructions": "x" * 4097}, anthropic.BadRequestError, "String should have at most 4096"),
        ({"mount_path": "/mnt/memory/x"}, anthropic.BadRequestError, "mount_path"),
    ],
)
def test_bad_memory_store_resources_are_4xx(
    client: anthropic.Anthropic, resource: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=re.escape(message)):
        _create(client, {"type": "memory_store", "memory_store_id": _store(client), **resource})


def test_archived_twice_colliding_and_too_many_stores_are_400(client: anthropic.Anthropic) -> None:
    archived = _store(client)
    client.beta.memory_stores.archive(archived)
    with pytest.raises(anthropic.BadRequestError, match="is archived"):
        _create(client, {"type": "memory_store", "memory_store_id": archived})
    twice = _store(client)
    with pytest.raises(anthropic.BadRequestError, match="attached twice"):
        _create(client, *[{"type": "memory_store", "memory_store_id": twice}] * 2)
    suffix = uuid.uuid4().hex[:6]
    one, other = _store(client, f"team {suffix}"), _store(client, f"Team_{suffix}")
    with pytest.raises(anthropic.BadRequestError, match="would both mount at"):
        _create(client, *({"type": "memory_store", "memory_store_id": s} for s in (one, other)))
    many = [{"type": "memory_store", "memory_store_id": _store(client)} for _ in range(9)]
    with pytest.raises(anthropic.BadRequestError, match="at most 8 memory stores"):
        _create(client, *many)
