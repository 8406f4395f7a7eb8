"""`mas dispatch` on Docker: one hardened container per claimed work item.

The container is built like a cloud sandbox (containers.py): the same memory, CPU and process
limits, dropped capabilities, `no-new-privileges`, the per-sandbox disk quota with a read-only
root filesystem, and the same networking (the shared bridge with the host firewall, or no network
and the egress proxy for limited networking). Its main process is the SDK worker
(sandbox/dispatch/entry.py); the mas API is reached through a relayed unix socket (api_relay.py).
Containers carry the dispatcher's instance label plus `mas.work`, `mas.agent-session` and
`mas.environment`, which is how a restarted dispatcher finds them again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import docker
import docker.errors
from docker.types import Mount

from app.config import Settings
from app.sandbox import disk, sdk_bundle
from app.sandbox.api_relay import ApiRelay
from app.sandbox.containers import (
    CAPABILITIES,
    MEMORY,
    WORKSPACE,
    Naming,
    disk_options,
    resource_limits,
)
from app.sandbox.engine import Engine, EngineError
from app.sandbox.images import ImageBuilder
from app.sandbox.interface import Progress, SandboxError, SandboxSpec
from app.sandbox.launcher import LaunchedWork, SandboxPolicy, WorkLaunch
from app.sandbox.network import Networks

log = logging.getLogger(__name__)
P = ParamSpec("P")
T = TypeVar("T")

API_DIR = "/run/mas-api"
API_SOCKET = "api.sock"
ROLE = "dispatch"


def dispatch_settings(settings: Settings) -> Settings:
    """The dispatcher's containers and state live under an instance of their own, so the reaper of
    a `mas serve` sharing the engine never takes them for its sandboxes (and the reverse)."""
    return settings.model_copy(update={"sandbox_instance": f"{settings.sandbox_instance}-dispatch"})


class DockerLauncher:
    def __init__(self, settings: Settings, environment_id: str) -> None:
        self.settings = dispatch_settings(settings)
        self.environment_id = environment_id
        timeout = settings.sandbox_engine_timeout_seconds
        self.engine = Engine(
            lambda: docker.from_env(timeout=max(1, round(timeout))),
            timeout_s=timeout,
            concurrency=settings.sandbox_engine_concurrency,
        )
        self.naming = Naming(self.settings)
        self._images = ImageBuilder(self.engine, self.settings)
        self._networks = Networks(self.engine, self.settings, self.naming)
        self._relay = ApiRelay()
        self._policy = SandboxPolicy()
        self._image: str | None = None
        self._bundle: Path | None = None

    @property
    def client(self) -> docker.DockerClient:
        return self.engine.client

    # --- the image and the worker bundle ------------------------------------------------------
    async def prepare(self, policy: SandboxPolicy, on_progress: Progress | None = None) -> str:
        self._policy = policy
        image = policy.image or await self._images.ensure(policy.packages, on_progress)
        if on_progress is not None:
            await on_progress("Bundling the SDK worker")
        self._bundle = await _in_thread(sdk_bundle.ensure, self.settings)
        image_id = await self.engine.run("look up the sandbox image", self._image_id, image)
        if image_id is None:
            raise SandboxError(f"image {image} not found")
        checked = self._bundle / f"checked-{image_id.replace(':', '-')}"
        if not await asyncio.to_thread(checked.exists):
            if on_progress is not None:
                await on_progress(f"Checking that {image} runs the SDK worker")
            await _in_thread(self._check, image, self._bundle)
            await asyncio.to_thread(checked.touch)
        self._image = image
        return image

    def _image_id(self, ref: str) -> str | None:
        try:
            return str(self.engine.client.images.get(ref).id)
        except docker.errors.ImageNotFound:
            return None

    def _check(self, image: str, bundle: Path) -> None:
        """Import the worker with the image's python3 (a throwaway container, no network)."""
        code = f"import sys; sys.path.insert(0, {sdk_bundle.SITE!r}); {sdk_bundle.WORKER_IMPORTS}"
        try:
            self.engine.client.containers.run(
                image,
                ["python3", "-I", "-B", "-c", code],
                entrypoint=[],
                network_mode="none",
                mounts=[self._bundle_mount(bundle)],
                labels={**self.naming.labels("check", "dispatch-check")},
                cap_drop=["ALL"],
                remove=True,
                stdout=False,
                stderr=True,
                **resource_limits(512, 128, 1.0),
            )
        except docker.errors.ContainerError as exc:
            stderr = bytes(exc.stderr or b"").decode(errors="replace").strip()[-1500:]
            raise SandboxError(
                f"{image} cannot run the SDK worker (its python3 must be CPython "
                f"{sys.version_info.major}.{sys.version_info.minor}, like mas's): {stderr}"
            ) from exc
        except docker.errors.DockerException as exc:
            raise EngineError(f"the Docker engine failed to check {image}: {exc}") from exc

    @staticmethod
    def _bundle_mount(bundle: Path) -> Mount:
        return Mount(sdk_bundle.MOUNT, str(bundle), type="bind", read_only=True)

    # --- one sandbox per work item -----------------------------------------------------------
    async def start(self, launch: WorkLaunch) -> None:
        if self._image is None or self._bundle is None:
            raise SandboxError("prepare() the launcher before starting sandboxes")
        key = launch.work_id
        await self._open_relay(key, launch.api_url)
        try:
            await self.engine.run("create the sandbox", self._create, launch, self._image, self._bundle)
            await self.engine.run("start the sandbox", self._start, key)
        except BaseException:
            await self._relay.close(key)
            raise

    async def adopt(self, work_id: str, api_url: str) -> None:
        await self._open_relay(work_id, api_url)

    async def _open_relay(self, key: str, api_url: str) -> None:
        path = self._socket(key)
        try:
            await self._relay.open(key, path, api_url)
        except OSError as exc:
            raise SandboxError(f"could not listen on the sandbox's API socket {path}: {exc}") from exc

    def _socket(self, key: str) -> Path:
        return self.naming.session_dir(key) / "api" / API_SOCKET

    def _create(self, launch: WorkLaunch, image: str, bundle: Path) -> None:
        key = launch.work_id
        if self._find(key) is not None:
            return
        session_dir = self.naming.session_dir(key)
        quota = self.settings.sandbox_disk_mb
        # The SDK worker makes each attached memory store's folder at its mount_path (under
        # /mnt/memory) itself, so that parent is writable here, on the session's disk when there
        # is a quota (the root filesystem is read-only then).
        memory = (disk.prepare(session_dir, quota) if quota else session_dir) / "memory"
        memory.mkdir(parents=True, exist_ok=True)
        spec = SandboxSpec(env_id=launch.environment_id, networking=self._policy.networking)
        plan = self._networks.plan(key, spec)
        environment = {
            "HOME": "/root",
            **plan.environment,
            "ANTHROPIC_BASE_URL": launch.api_url,
            "ANTHROPIC_WORK_ID": launch.work_id,
            "ANTHROPIC_ENVIRONMENT_ID": launch.environment_id,
            "ANTHROPIC_SESSION_ID": launch.session_id,
            "ANTHROPIC_WORK_SECRET": launch.secret,
            "MAS_API_SOCKET": f"{API_DIR}/{API_SOCKET}",
            "MAS_MAX_IDLE": f"{self._policy.max_idle_seconds:g}",
            **_egress_environment(plan.server_args),
        }
        if not quota:
            (session_dir / "workspace").mkdir(parents=True, exist_ok=True)
        options = disk_options(self.settings, session_dir)
        mounts = [
            Mount(API_DIR, str(session_dir / "api"), type="bind", read_only=True),
            self._bundle_mount(bundle),
            Mount(MEMORY, str(memory), type="bind"),
            *plan.mounts,
            *options.pop("mounts", [Mount(WORKSPACE, str(session_dir / "workspace"), type="bind")]),
        ]
        labels = {
            **self.naming.labels(key, ROLE),
            "mas.work": launch.work_id,
            "mas.agent-session": launch.session_id,
            "mas.environment": launch.environment_id,
        }
        try:
            self.engine.client.containers.create(
                image=image,
                name=self.naming.container(key),
                command=["python3", "-I", sdk_bundle.ENTRY],
                entrypoint=[],
                working_dir=WORKSPACE,
                hostname="sandbox",
                labels=labels,
                environment=environment,
                **({"network_mode": "none"} if plan.network == "none" else {"network": plan.network}),
                cap_drop=["ALL"],
                cap_add=CAPABILITIES,
                mounts=mounts,
                **options,
                **resource_limits(
                    self.settings.sandbox_memory_mb, self.settings.sandbox_pids, self.settings.sandbox_cpus
                ),
            )
        except docker.errors.NotFound:
            self._networks.forget()  # the shared network was removed under us: find it afresh
            raise

    def _start(self, key: str) -> None:
        container = self._find(key)
        if container is None:
            raise SandboxError(f"the sandbox of {key} vanished before it started")
        self._networks.start_proxy(key)
        if container.status != "running":
            container.start()

    def _find(self, key: str) -> Any:
        try:
            return self.engine.client.containers.get(self.naming.container(key))
        except docker.errors.NotFound:
            return None

    async def inspect(self, work_id: str) -> LaunchedWork:
        container = await self.engine.run("inspect the sandbox", self._find, work_id)
        if container is None:
            return LaunchedWork(work_id=work_id, session_id="", state="missing")
        return _launched(container)

    async def launched(self) -> list[LaunchedWork]:
        containers = await self.engine.run("list sandboxes", self._list)
        return [_launched(c) for c in containers]

    def _list(self) -> list[Any]:
        filters = self.naming.filters(ROLE)
        filters["label"].append(f"mas.environment={self.environment_id}")
        return list(self.engine.client.containers.list(all=True, filters=filters, ignore_removed=True))

    async def logs(self, work_id: str, tail: int = 40) -> str:
        container = await self.engine.run("look up the sandbox", self._find, work_id)
        if container is None:
            return ""
        data = await self.engine.run("read the sandbox's logs", container.logs, tail=tail)
        return bytes(data).decode(errors="replace").strip()

    async def kill(self, work_id: str) -> None:
        await self.engine.run("kill the sandbox", self._kill, work_id)

    def _kill(self, key: str) -> None:
        container = self._find(key)
        if container is not None:
            with contextlib.suppress(docker.errors.APIError):  # 409: it is not running
                container.kill()

    async def remove(self, work_id: str) -> None:
        await self._relay.close(work_id)
        await self.engine.run("remove the sandbox", self._remove, work_id)

    def _remove(self, key: str) -> None:
        container = self._find(key)
        if container is not None:
            with contextlib.suppress(docker.errors.NotFound):
                container.remove(force=True)
        self._networks.remove_proxy(key)
        session_dir = self.naming.session_dir(key)
        disk.release(session_dir)
        shutil.rmtree(session_dir, ignore_errors=True)

    def health(self) -> str | None:
        return self.engine.unavailable

    async def close(self) -> None:
        await self._relay.close_all()
        self.engine.close()


def _egress_environment(server_args: list[str]) -> dict[str, str]:
    """The tool server's relay arguments of a limited plan, for the entry script's own relay."""
    args = dict(zip(server_args[::2], server_args[1::2], strict=False))
    if "--proxy-socket" not in args:
        return {}
    return {"MAS_EGRESS_SOCKET": args["--proxy-socket"], "MAS_EGRESS_PORT": args["--proxy-port"]}


def _launched(container: Any) -> LaunchedWork:
    labels = container.labels or {}
    state = container.attrs.get("State") or {}
    status = state.get("Status")
    running = status in ("running", "restarting", "paused")
    return LaunchedWork(
        work_id=str(labels.get("mas.work", "")),
        session_id=str(labels.get("mas.agent-session", "")),
        state="running" if running else "exited",
        # A container only created never ran its worker (its dispatcher died in between).
        exit_code=None if running or status == "created" else int(state.get("ExitCode", -1)),
        oom_killed=bool(state.get("OOMKilled")),
        started_at=state.get("StartedAt"),
    )


async def _in_thread(fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
    """Blocking work with no engine deadline (the SDK's build context, an image build)."""
    try:
        return await asyncio.to_thread(fn, *args, **kwargs)
    except docker.errors.DockerException as exc:
        raise EngineError(f"the Docker engine failed: {exc}") from exc
