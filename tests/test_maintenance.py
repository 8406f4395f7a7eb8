"""`mas sandbox prune` (app/maintenance.py) on the real engine, with only what this test creates:
an instance label of its own, a base image of its own (so its environment images are built here,
by this instance), sessions and environments in a real database. Another instance's containers on
the same engine stay untouched."""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anthropic
import docker
import docker.errors
import pytest

from app.config import Settings
from app.sandbox import SandboxSpec
from app.sandbox.docker_backend import DockerBackend
from tests.conftest import IN_CI
from tests.support import scratch
from tests.support.factories import make_agent, make_environment, make_session
from tests.support.server import ROOT

pytestmark = [pytest.mark.docker, pytest.mark.timeout(900), pytest.mark.slow]

KEPT = {"pip": ["six==1.16.0"]}
UNNEEDED = {"pip": ["six==1.15.0"]}


BASE = Settings().sandbox_base_image


@pytest.fixture
def instance() -> str:
    return f"prune-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def docker_client() -> Iterator[docker.DockerClient]:
    try:
        client = docker.from_env()
        client.images.get(BASE)
    except docker.errors.DockerException as exc:
        if IN_CI:
            pytest.fail(f"CI=true but Docker or {BASE} is not there (scripts/test.sh builds it): {exc}")
        pytest.skip(f"Docker or {BASE} is not there: {exc}")
    yield client
    client.close()


@pytest.fixture
def own_base(docker_client: docker.DockerClient, instance: str) -> Iterator[str]:
    """A base image new to this test: environment images on it are built (and labelled) here."""
    tag = f"mas-test-base:{instance}"
    dockerfile = io.BytesIO(f"FROM {BASE}\nLABEL mas.test={instance}\n".encode())
    docker_client.images.build(fileobj=dockerfile, tag=tag, rm=True)
    base_id = docker_client.images.get(tag).id
    yield tag
    for image in docker_client.images.list(filters={"label": f"mas.instance={instance}"}):
        with contextlib.suppress(docker.errors.ImageNotFound, docker.errors.APIError):
            docker_client.images.remove(image.id, force=True)
    with contextlib.suppress(docker.errors.ImageNotFound, docker.errors.APIError):
        docker_client.images.remove(base_id, force=True)


def settings_for(instance: str, base: str, database_url: str) -> Settings:
    return Settings(
        sandbox_instance=instance,
        sandbox_state_dir=scratch.make_dir(instance),
        sandbox_network=f"mas-{instance}-sandbox",
        sandbox_egress_network=f"mas-{instance}-egress",
        sandbox_memory_mb=512,
        sandbox_warm_pool=0,
        sandbox_base_image=base,
        database_url=database_url,
    )


@pytest.fixture
async def backends(
    docker_client: docker.DockerClient, instance: str, own_base: str, database_url: str
) -> AsyncIterator[tuple[DockerBackend, DockerBackend]]:
    """This test's instance, and a neighbour (another instance on the same engine)."""
    mine = DockerBackend(settings_for(instance, own_base, database_url))
    neighbour = DockerBackend(settings_for(f"{instance}-other", own_base, database_url))
    yield mine, neighbour
    for backend in (mine, neighbour):
        await backend.close()
        label = {"label": f"mas.instance={backend.naming.instance}"}
        for container in docker_client.containers.list(all=True, filters=label, ignore_removed=True):
            with contextlib.suppress(docker.errors.NotFound):
                container.remove(force=True)
        for network in docker_client.networks.list(filters=label):
            with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
                network.remove()


def prune(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "MAS_DATABASE_URL": settings.database_url,
        "MAS_SANDBOX_BACKEND": "docker",
        "MAS_SANDBOX_INSTANCE": settings.sandbox_instance,
        "MAS_SANDBOX_BASE_IMAGE": settings.sandbox_base_image,
        "MAS_SANDBOX_STATE_DIR": str(settings.sandbox_state_dir),
    }
    command = [sys.executable, "-m", "app", "sandbox", "prune", *args]
    return subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=600)


async def start(backend: DockerBackend, session_id: str, packages: dict[str, list[str]]) -> Any:
    await backend.ensure(session_id, SandboxSpec(env_id="env_prune", packages=packages))
    return backend.client.containers.get(backend.naming.container(session_id))


def environment(client: anthropic.Anthropic, packages: dict[str, list[str]]) -> str:
    config = {"type": "cloud", "packages": {"type": "packages", **packages}}
    return make_environment(client, config=config).id


# Two real image builds: once, on PostgreSQL (the stricter dialect), keeps CI's time in bounds.
@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
async def test_prune_removes_only_what_no_session_or_environment_needs(
    client: anthropic.Anthropic, backends: tuple[DockerBackend, DockerBackend]
) -> None:
    mine, neighbour = backends
    agent = make_agent(client).id
    kept_env, unneeded_env = environment(client, KEPT), environment(client, UNNEEDED)
    idle = make_session(client, agent=agent, environment_id=kept_env).id
    deleted = make_session(client, agent=agent, environment_id=unneeded_env).id
    still_running = make_session(client, agent=agent, environment_id=kept_env).id

    idle_box = await start(mine, idle, KEPT)
    deleted_box = await start(mine, deleted, UNNEEDED)
    running_box = await start(mine, still_running, KEPT)
    foreign = f"sesn_{uuid.uuid4().hex[:12]}"  # no session of this database
    foreign_box = await start(neighbour, foreign, {})
    for backend, session_id in ((mine, idle), (mine, deleted), (neighbour, foreign)):
        await backend.stop(session_id)
    for box in (idle_box, deleted_box, foreign_box):
        box.reload()
        assert box.status == "exited"
    for session_id in (deleted, still_running):
        client.beta.sessions.delete(session_id)
    client.beta.environments.archive(unneeded_env)
    unneeded_image = deleted_box.image.id
    kept_image = idle_box.image.id
    assert unneeded_image != kept_image
    assert mine.naming.session_dir(deleted).exists()

    dry = prune(mine.settings, "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    planned = json.loads(dry.stdout)
    assert planned["dry_run"] is True
    assert [(i["kind"], i["id"]) for i in planned["items"]] == [
        ("container", deleted_box.id),
        ("image", unneeded_image),
    ]
    assert planned["items"][1]["size_bytes"] > 0 and planned["items"][1]["name"].startswith("mas-env:")
    deleted_box.reload()  # a dry run removes nothing

    done = prune(mine.settings)
    assert done.returncode == 0, done.stderr
    assert (
        f"removed container {deleted}" in done.stdout and "removed 1 container(s), 1 image(s)" in done.stdout
    )
    engine = mine.client
    with pytest.raises(docker.errors.NotFound):
        engine.containers.get(deleted_box.id)
    with pytest.raises(docker.errors.ImageNotFound):
        engine.images.get(unneeded_image)
    assert not mine.naming.session_dir(deleted).exists()
    # What is needed, still running, another instance's, and the base images all stay.
    for box in (idle_box, running_box, foreign_box):
        box.reload()
    assert running_box.status == "running"
    assert engine.images.get(kept_image).id == kept_image
    engine.images.get(mine.settings.sandbox_base_image)
    engine.images.get(mine.settings.sandbox_proxy_image)

    again = prune(mine.settings)
    assert again.returncode == 0 and again.stdout.strip() == "nothing to prune"
