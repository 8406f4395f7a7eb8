"""`mas sandbox prune`: remove what no session needs any more, for this instance only.

- Stopped containers (exited or dead) of this instance (`mas.instance`) whose session is gone or
  terminated, with their proxy and state directory. A session with any running container is left
  alone, and so is a young warm-pool container (another process may be adopting it).
- Environment images this instance built (`mas.role=env-image`, `mas.instance`) that no needed
  package spec maps to on the current base image and no remaining container uses. The base and
  proxy images are never candidates (they carry no env-image label).

The plan is computed first (`--dry-run` prints it); removal then goes item by item, so a failure
(an image a new container started using meanwhile) is reported and the rest goes on.
"""

from __future__ import annotations

import contextlib
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any, Literal

import docker.errors
from pydantic import JsonValue

from app.sandbox.build_steps import image_tag, normalize
from app.sandbox.docker_backend import POOL_GRACE_S, DockerBackend, younger_than
from app.sandbox.interface import ImageBuildError, SandboxError
from app.sandbox.pool import is_pool_key

STOPPED = ("exited", "dead")


@dataclass(frozen=True)
class Prunable:
    kind: Literal["container", "image"]
    name: str  # the session (or warm-pool key) of containers; the tag(s) of an image
    id: str
    reason: str
    size_bytes: int | None = None

    def as_json(self) -> dict[str, JsonValue]:  # a line of `mas sandbox prune --json`
        return asdict(self)


def needed_tags(base_id: str | None, specs: Iterable[dict[str, list[str]]]) -> set[str]:
    if base_id is None:
        return set()
    tags = set()
    for packages in specs:
        with contextlib.suppress(ImageBuildError):  # an invalid spec never built an image
            if normalize(packages):
                tags.add(image_tag(base_id, packages))
    return tags


class Pruner:
    def __init__(self, backend: DockerBackend) -> None:
        self.backend = backend
        self.naming = backend.naming

    async def plan(
        self, needed_specs: list[dict[str, list[str]]], needed_sessions: set[str]
    ) -> list[Prunable]:
        containers = await self.backend.engine.run(
            "list this instance's containers", self._containers, needed_sessions
        )
        gone = {c.id for c in containers}
        images = await self.backend.engine.run("list environment images", self._images, needed_specs, gone)
        return [*containers, *images]

    async def remove(self, item: Prunable) -> str | None:
        """Remove one planned item; why it could not be removed, or None."""
        try:
            if item.kind == "container":
                await self.backend.remove(item.name)
            else:
                await self.backend.engine.run("remove an environment image", self._remove_image, item)
        except SandboxError as exc:
            return str(exc)
        return None

    def _containers(self, needed_sessions: set[str]) -> list[Prunable]:
        """Per session (sandbox + proxy): prunable when not needed and every container stopped."""
        client = self.backend.client
        found = client.containers.list(all=True, filters=self.naming.filters(), ignore_removed=True)
        by_key: dict[str, list[Any]] = defaultdict(list)
        for container in found:
            key = self.naming.session_of(container.name)
            if key is not None:
                by_key[key].append(container)
        out = []
        for key, group in sorted(by_key.items()):
            if key in needed_sessions or any(c.status not in STOPPED for c in group):
                continue
            if is_pool_key(key):
                if any(younger_than(c, POOL_GRACE_S) for c in group):
                    continue
                reason = "a stopped warm-pool container"
            else:
                reason = "its session is terminated or gone"
            out += [Prunable("container", key, c.id, f"{reason} ({c.name}, {c.status})") for c in group]
        return out

    def _images(self, needed_specs: list[dict[str, list[str]]], going: set[str]) -> list[Prunable]:
        client = self.backend.client
        try:
            base_id: str | None = str(client.images.get(self.backend.settings.sandbox_base_image).id)
        except docker.errors.ImageNotFound:
            base_id = None
        keep = needed_tags(base_id, needed_specs)
        labels = ["mas.managed=1", "mas.role=env-image", f"mas.instance={self.naming.instance}"]
        out = []
        for image in client.images.list(filters={"label": labels}):
            if set(image.tags) & keep:
                continue
            users = client.containers.list(all=True, filters={"ancestor": image.id}, ignore_removed=True)
            if any(user.id not in going for user in users):
                continue
            name = ",".join(image.tags) or image.short_id
            size = int(image.attrs.get("Size") or 0)
            out.append(Prunable("image", name, image.id, "no environment needs it", size))
        return out

    def _remove_image(self, item: Prunable) -> None:
        client = self.backend.client
        try:
            tags = [t for t in item.name.split(",") if ":" in t] or [item.id]
            for tag in tags:  # the last tag removed removes the image
                client.images.remove(tag, noprune=False)
        except docker.errors.ImageNotFound:
            return
        except docker.errors.APIError as exc:
            raise SandboxError(f"could not remove {item.name}: {exc.explanation or exc}") from exc
