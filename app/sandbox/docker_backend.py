"""Per-session Docker containers whose main process is the tool server."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import shutil
import tarfile
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO, cast

import docker
import docker.errors

from app.config import Settings
from app.observability import measure
from app.sandbox import disk, egress
from app.sandbox.base import ChannelBackend
from app.sandbox.channel import ChannelClosed, ToolChannel
from app.sandbox.containers import WORKSPACE, Naming, sandbox_options
from app.sandbox.engine import Engine, EngineError
from app.sandbox.images import ImageBuilder
from app.sandbox.interface import (
    Progress,
    SandboxError,
    SandboxNotFound,
    SandboxSpec,
    ToolRequest,
    ToolResult,
)
from app.sandbox.network import Networks
from app.sandbox.pool import WarmPool, is_pool_key
from app.shared.content import ContentBlock
from app.shared.loops import LoopService

log = logging.getLogger(__name__)

_START_TIMEOUT_S = 30.0
POOL_GRACE_S = 600.0


# A copy into a sandbox gets the engine's deadline plus one second per this many bytes.
COPY_BYTES_PER_SECOND = 8 * 1024 * 1024


def _exists(container: Any, path: str) -> bool:
    return bool(container.status == "running" and container.exec_run(["test", "-e", path]).exit_code == 0)


def _archive(source: Path, path: str) -> tuple[BinaryIO, int]:
    """A tar of ``source`` named for ``path`` under /workspace, in a temporary file (a repository
    can be large), and its size."""
    archive = tempfile.TemporaryFile()  # noqa: SIM115 (the caller closes it)
    try:
        with tarfile.open(fileobj=archive, mode="w") as tar:
            tar.add(source, arcname=path.removeprefix(WORKSPACE).lstrip("/"))
        size = archive.tell()
        archive.seek(0)
    except BaseException:
        archive.close()
        raise
    return cast(BinaryIO, archive), size


def _put_archive(container_id: str, archive: BinaryIO, deadline: float) -> None:
    """Stream ``archive`` into /workspace (writable, even when the root filesystem is read-only),
    on a client whose HTTP timeout is the copy's own deadline."""
    client = docker.from_env(timeout=max(1, math.ceil(deadline)))
    try:
        if not client.api.put_archive(container_id, WORKSPACE, archive):
            raise SandboxError(f"the Docker engine refused the archive for {container_id[:12]}")
    finally:
        client.close()


def younger_than(container: Any, seconds: float) -> bool:
    created = datetime.fromisoformat(container.attrs["Created"][:26].rstrip("Z") + "+00:00")
    return (datetime.now(UTC) - created).total_seconds() < seconds


class DockerBackend(ChannelBackend):
    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        timeout = settings.sandbox_engine_timeout_seconds
        self.engine = Engine(
            lambda: docker.from_env(timeout=max(1, round(timeout))),
            timeout_s=timeout,
            concurrency=settings.sandbox_engine_concurrency,
        )
        self.naming = Naming(settings)
        self.images = ImageBuilder(self.engine, settings)
        self._networks = Networks(self.engine, settings, self.naming)
        self.pool = WarmPool(settings.sandbox_warm_pool, self._start_pooled, self._remove_pooled)

    @property
    def client(self) -> docker.DockerClient:
        """The Docker SDK client (for engine-thread code and tests)."""
        return self.engine.client

    def workspace(self, session_id: str) -> str:
        return WORKSPACE

    def uploads_dir(self, session_id: str) -> Path:
        return self.naming.uploads_dir(session_id)

    def outputs_dir(self, session_id: str) -> Path:
        return self.naming.outputs_dir(session_id)

    def memory_dir(self, session_id: str) -> Path:
        return self.naming.memory_dir(session_id)

    async def put_tree(self, session_id: str, source: Path, path: str) -> bool:
        container = await self.engine.run("look up the sandbox", self._find, session_id)
        if container is None:
            raise SandboxNotFound(f"session {session_id} has no sandbox")
        if await self.engine.run("look for a repository in the sandbox", _exists, container, path):
            return False
        # Archived on the host first (no engine call waits on that), then sent in one call whose
        # deadline grows with the archive: a large repository is not cut off by the deadline
        # meant for one quick engine call.
        archive, size = await asyncio.to_thread(_archive, source, path)
        try:
            deadline = self.engine.timeout_s + size / COPY_BYTES_PER_SECOND
            await self.engine.run_within(
                "copy a repository into the sandbox", deadline, _put_archive, container.id, archive, deadline
            )
        finally:
            archive.close()
        return True

    async def ensure(self, session_id: str, spec: SandboxSpec, on_progress: Progress | None = None) -> None:
        if spec.secrets is not None and (spec.secrets or self._networks.secrets.in_use(session_id)):
            # Rotation, archival and networking changes reach a running sandbox at its next step.
            await asyncio.to_thread(self._networks.secrets.refresh, session_id, spec.secrets)
        channel = self._channels.get(session_id)
        if channel is not None and not channel.closed:
            return  # live: no Docker call on the hot path of every tool step
        image = await self.images.ensure(spec.packages, on_progress)
        # Memory mounts and secrets' variables are fixed at create: such a session gets a
        # container of its own.
        poolable = not egress.is_limited(spec.networking) and not spec.memory and not spec.secrets
        async with self._lock(session_id):
            with measure.sandbox_start() as start:
                kind = await self._place(session_id, spec, image, poolable, on_progress)
                channel = self._channels.get(session_id)
                if channel is None or channel.closed:
                    self._channels[session_id] = await self._start_and_connect(session_id)
                    start.value = kind
        if poolable:
            await self.pool.refill(image)
        await self.idle_stopper.start()

    async def _place(
        self, session_id: str, spec: SandboxSpec, image: str, poolable: bool, on_progress: Progress | None
    ) -> str:
        """Make sure the session's container exists: `restart` (it did), `warm` (adopted from the
        pool) or `cold` (created now)."""
        if await self.engine.run("look up the sandbox", self._find, session_id) is not None:
            return "restart"
        if poolable and await self._adopt(session_id, image):
            return "warm"
        if on_progress is not None:
            await on_progress("Creating sandbox container")
        await self.engine.run("create the sandbox container", self._create, session_id, spec, image)
        return "cold"

    async def execute(self, session_id: str, request: ToolRequest) -> ToolResult:
        result = await super().execute(session_id, request)
        quota = self.settings.sandbox_disk_mb
        texts = [block for block in result.content if block.get("type") == "text"]
        if quota and texts and any("No space left on device" in str(block["text"]) for block in texts):
            # Said once, in the result's last text block: the model learns what the limit is.
            last = texts[-1]
            content: list[ContentBlock] = [
                {**block, "text": f"{block['text']}\n{disk.full_note(quota)}"} if block is last else block
                for block in result.content
            ]
            return ToolResult(content, result.is_error)
        return result

    async def prewarm(self, spec: SandboxSpec) -> None:
        if not egress.is_limited(spec.networking):
            await self.pool.refill(await self.images.ensure(spec.packages))

    # --- the warm pool (see pool.py) ---------------------------------------------------------
    async def _start_pooled(self, key: str, image: str) -> None:
        await self.engine.run("create a warm sandbox", self._create, key, SandboxSpec(env_id=""), image)
        await (await self._start_and_connect(key)).close()

    async def _remove_pooled(self, key: str) -> None:
        await self.engine.run("remove a warm sandbox", self._remove, key)

    async def _adopt(self, session_id: str, image: str) -> bool:
        key = self.pool.take(image)
        if key is None:
            return False
        try:
            await self.engine.run("adopt a warm sandbox", self._rename, key, session_id)
        except SandboxError:
            log.warning("could not adopt warm sandbox %s", key, exc_info=True)
            await self._remove_pooled(key)
            return False
        return True

    def _rename(self, key: str, session_id: str) -> None:
        self.engine.client.containers.get(self.naming.container(key)).rename(
            self.naming.container(session_id)
        )
        session_dir = self.naming.session_dir(session_id)
        session_dir.mkdir(parents=True, exist_ok=True)
        (session_dir / "run").symlink_to(self.naming.session_dir(key) / "run", target_is_directory=True)

    async def _attach(self, session_id: str) -> ToolChannel:
        if await self.engine.run("look up the sandbox", self._find, session_id) is None:
            raise SandboxNotFound(f"session {session_id} has no sandbox; call ensure() first")
        return await self._start_and_connect(session_id)

    async def _start_and_connect(self, session_id: str) -> ToolChannel:
        await self.engine.run("start the sandbox", self._start, session_id)
        return await self._connect(session_id)

    def _find(self, session_id: str) -> Any:
        try:
            return self.engine.client.containers.get(self.naming.container(session_id))
        except docker.errors.NotFound:
            return None

    def _create(self, session_id: str, spec: SandboxSpec, image: str) -> None:
        session_dir = self.naming.session_dir(session_id)
        if self.settings.sandbox_disk_mb:
            disk.prepare(session_dir, self.settings.sandbox_disk_mb)
        else:
            (session_dir / "run").mkdir(parents=True, exist_ok=True)
            (session_dir / "outputs").mkdir(parents=True, exist_ok=True)
        (session_dir / "uploads").mkdir(parents=True, exist_ok=True)
        for mount in spec.memory:
            (self.naming.memory_dir(session_id) / mount.slug).mkdir(parents=True, exist_ok=True)
        plan = self._networks.plan(session_id, spec)
        try:
            options = sandbox_options(self.settings, self.naming, session_id, image, plan, spec.memory)
            self.engine.client.containers.create(**options)
        except docker.errors.NotFound:
            self._networks.forget()  # the shared network was removed under us: find it afresh
            raise
        except docker.errors.APIError as exc:
            if exc.status_code != 409:  # 409: a concurrent ensure created it first
                raise

    def _start(self, session_id: str) -> None:
        container = self._find(session_id)
        if container is None:
            raise SandboxNotFound(f"session {session_id} has no sandbox")
        self._networks.start_proxy(session_id)
        if container.status != "running":
            if quota := self.settings.sandbox_disk_mb:  # mounts do not survive a reboot of the host
                disk.mount_again(self.naming.state_root, self.naming.session_dir(session_id), quota)
            # A socket left by the previous run would refuse connections until the server rebinds.
            self.naming.socket_path(session_id).unlink(missing_ok=True)
            container.start()

    def _socket_path(self, session_id: str) -> Path:
        return self.naming.socket_path(session_id)

    async def _connect(self, session_id: str) -> ToolChannel:
        """Wait for the freshly (re)started tool server to accept connections."""
        path = self.naming.socket_path(session_id)
        deadline = time.monotonic() + _START_TIMEOUT_S
        delay = 0.005
        while True:
            with contextlib.suppress(ChannelClosed, TimeoutError):
                channel = await ToolChannel.connect(path)
                await channel.call({"op": "ping"}, 5.0)
                return channel
            if time.monotonic() > deadline or (delay > 0.2 and not await self._is_running(session_id)):
                logs = await self._logs(session_id)
                raise SandboxError(f"the tool server of {session_id} did not start: {logs}")
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.25)

    async def _is_running(self, session_id: str) -> bool:
        container = await self.engine.run("look up the sandbox", self._find, session_id)
        return container is not None and container.status == "running"

    async def _logs(self, session_id: str) -> str:
        container = await self.engine.run("look up the sandbox", self._find, session_id)
        if container is None:
            return "container is gone"
        logs = await self.engine.run("read the sandbox's logs", container.logs, tail=20)
        return f"status {container.status}; {bytes(logs).decode(errors='replace').strip()}"

    async def _halt(self, session_id: str) -> None:
        await self.engine.run("stop the sandbox", self._stop_containers, session_id)

    def _stop_containers(self, session_id: str) -> None:
        container = self._find(session_id)
        if container is not None and container.status == "running":
            container.stop(timeout=3)
        self._networks.stop_proxy(session_id)

    async def remove(self, session_id: str) -> None:
        async with self._lock(session_id):
            await self._drop_channel(session_id)
            await self._halt_before_removal(session_id)
            await self.engine.run("remove the sandbox", self._remove, session_id)
            self._forget_files(session_id)
        self._networks.secrets.forget(session_id)
        self._locks.pop(session_id, None)

    def _remove(self, session_id: str) -> None:
        container = self._find(session_id)
        if container is not None:
            with contextlib.suppress(docker.errors.NotFound):
                container.remove(force=True)
        self._networks.remove_proxy(session_id)
        # Adopted from the warm pool: the pool's directory (and disk) goes too.
        for directory in disk.owners(self.naming.state_root, self.naming.session_dir(session_id)):
            disk.release(directory)
            shutil.rmtree(directory, ignore_errors=True)

    async def reap_orphans(self, live_session_ids: set[str]) -> int:
        known = await self.engine.run("list sandboxes", self._known_sessions)
        orphans = known - live_session_ids - self.pool.keys()
        for session_id in orphans:
            await self.remove(session_id)
        return len(orphans)

    def _known_sessions(self) -> set[str]:
        """Sessions (and stale warm-pool keys) with containers; by name, which adoption changes.

        Another process's warm containers are left alone while young (it may be starting or about
        to adopt them); older ones are reaped. Adoption of a reaped one fails over to a cold start.
        """
        containers = self.engine.client.containers.list(
            all=True, filters=self.naming.filters(), ignore_removed=True
        )
        known = set()
        for container in containers:
            key = self.naming.session_of(container.name)
            if key is not None and not (is_pool_key(key) and younger_than(container, POOL_GRACE_S)):
                known.add(key)
        return known

    async def _running_sessions(self) -> list[str]:
        filters: dict[str, str | list[str]] = {**self.naming.filters("sandbox"), "status": "running"}
        containers = await self.engine.run("list running sandboxes", self._list, filters)
        keys = (self.naming.session_of(c.name) for c in containers)
        return [k for k in keys if k is not None and not is_pool_key(k)]

    def _list(self, filters: dict[str, str | list[str]]) -> list[Any]:
        return list(self.engine.client.containers.list(filters=filters, ignore_removed=True))

    def health(self) -> str | None:
        """Why the sandbox is unavailable (the engine did not answer), or None."""
        return self.engine.unavailable

    async def probe(self) -> str | None:
        """Ping the engine (within the engine deadline): the reason it does not answer, or None."""
        try:
            await self.engine.run("ping", lambda: self.engine.client.ping())
        except EngineError as exc:
            return str(exc)
        return None

    def services(self) -> list[LoopService]:
        return [*super().services(), self.pool]

    async def close(self) -> None:
        with contextlib.suppress(EngineError):
            await self.pool.stop()
        await super().close()
        self.engine.close()
