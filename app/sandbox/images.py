"""Environment images: built once per (base image, packages) and shared by every session."""

from __future__ import annotations

import asyncio
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

import docker
import docker.errors
from pydantic import JsonValue

from app.config import Settings
from app.observability import measure
from app.sandbox.build_steps import BuildStep, Mirrors, build_steps, dockerfile, image_tag, normalize
from app.sandbox.engine import Engine, EngineError
from app.sandbox.interface import ImageBuildError, Progress, SandboxError

_STEP = re.compile(r"^Step (\d+)/(\d+) : ")
_OUTPUT_KEPT = 400  # lines of the failing step shown in ImageBuildError.output


@dataclass
class _BuildLog:
    """Which manager each Dockerfile step belongs to, and the output of the current step."""

    steps: list[BuildStep]
    current: str = "base"
    lines: list[str] = field(default_factory=list)

    def feed(self, line: str) -> None:
        match = _STEP.match(line)
        if match:
            index = int(match.group(1)) - 2  # step 1 is FROM
            self.current = self.steps[index].manager if 0 <= index < len(self.steps) else "base"
            self.lines = []
        self.lines = [*self.lines[-_OUTPUT_KEPT:], line]


class ImageBuilder:
    def __init__(self, engine: Engine, settings: Settings) -> None:
        self._engine = engine
        self._settings = settings
        self._locks: dict[str, asyncio.Lock] = {}

    async def ensure(self, packages: dict[str, list[str]], on_progress: Progress | None = None) -> str:
        """Return the image for ``packages``, building it unless an image with its tag exists."""
        base = self._settings.sandbox_base_image
        base_id = await self._engine.run("look up the base image", self._image_id, base)
        if base_id is None:
            raise SandboxError(
                f"base image {base} not found; build it with sandbox/build-base.sh (or `mas sandbox base`)"
            )
        if not normalize(packages):
            return base
        tag = image_tag(base_id, packages)
        # One build per tag in this process; the tag check inside the lock skips repeats.
        async with self._locks.setdefault(tag, asyncio.Lock()):
            if await self._engine.run("look up the environment image", self._image_id, tag) is None:
                with measure.image_build():
                    await self._build(tag, base_id, packages, on_progress)
            elif on_progress is not None:
                await on_progress(f"Using cached environment image {tag}")
        return tag

    async def exists(self, ref: str) -> bool:
        """Whether the engine has the image ``ref``."""
        return await self._engine.run("look up an image", self._image_id, ref) is not None

    def _image_id(self, ref: str) -> str | None:
        try:
            return str(self._engine.client.images.get(ref).id)
        except docker.errors.ImageNotFound:
            return None

    async def _build(
        self, tag: str, base_id: str, packages: dict[str, list[str]], on_progress: Progress | None
    ) -> None:
        steps = build_steps(packages, Mirrors.from_settings(self._settings))
        log = _BuildLog(steps)
        queue: asyncio.Queue[str | None] = asyncio.Queue()
        loop = asyncio.get_running_loop()

        def run() -> None:
            try:
                for line in self._stream(tag, dockerfile(base_id, steps)):
                    loop.call_soon_threadsafe(queue.put_nowait, line)
            finally:
                loop.call_soon_threadsafe(queue.put_nowait, None)

        worker = asyncio.create_task(asyncio.to_thread(run))
        while (line := await queue.get()) is not None:
            log.feed(line)
            if on_progress is not None:
                await on_progress(line)
        try:
            await worker
        except _BuildFailed as exc:
            raise ImageBuildError(log.current, "\n".join([*log.lines, exc.message])) from None
        except (docker.errors.DockerException, OSError) as exc:
            raise EngineError(f"the Docker engine failed to build {tag}: {exc}") from exc

    def _stream(self, tag: str, text: str) -> Iterator[str]:
        """Lines of a classic `docker build`; the tag is applied only when every step succeeded."""
        chunks = self._engine.client.api.build(
            fileobj=io.BytesIO(text.encode()),
            tag=tag,
            rm=True,
            forcerm=True,
            decode=True,
            pull=False,
            # The instance that built it: `mas sandbox prune` removes only its own instance's.
            labels={
                "mas.managed": "1",
                "mas.role": "env-image",
                "mas.instance": self._settings.sandbox_instance,
            },
        )
        failure: str | None = None
        # Read to the end even after an error, so the daemon's response (and socket) is closed.
        for chunk in chunks:
            if "error" in chunk and failure is None:
                failure = str(chunk["error"]).strip()
            yield from _lines(chunk)
        if failure is not None:
            raise _BuildFailed(failure)


class _BuildFailed(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _lines(chunk: dict[str, JsonValue]) -> Iterator[str]:  # a chunk of the engine's build log
    for line in str(chunk.get("stream", "")).splitlines():
        if line.strip():
            yield line.rstrip()
