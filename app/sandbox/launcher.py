"""The seam between `mas dispatch` and where a claimed work item's worker runs.

A launcher starts one sandbox per work item, running the SDK's `EnvironmentWorker` on that item
alone (sandbox/dispatch/entry.py), and reports on it; the dispatcher (app/dispatch/) does the
queue side: poll, ack, watch, stop, report. Docker is the one backend today
(`app/sandbox/docker_launcher.py`); a Kubernetes one (a pod per item) implements the same few calls.
Sandboxes are found again by label after a restart, so none is leaked.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol

from app.sandbox.interface import Progress
from app.shared.environment_config import NetworkingConfig, unrestricted


@dataclass(frozen=True)
class WorkLaunch:
    """What one sandbox needs: the item's ids, its secret (its sessions token is the sandbox's
    only credential) and where the mas API is."""

    work_id: str
    environment_id: str
    session_id: str
    secret: str
    api_url: str


@dataclass(frozen=True)
class SandboxPolicy:
    """How the dispatcher's sandboxes are built and confined (the cloud sandboxes' limits apply)."""

    packages: dict[str, list[str]] = field(default_factory=dict)
    image: str | None = None  # a prepared image instead of the base image + packages
    networking: NetworkingConfig = field(default_factory=unrestricted)
    max_idle_seconds: float = 60.0  # the worker's wait for new input after a turn ends


@dataclass(frozen=True)
class LaunchedWork:
    """A sandbox as the backend sees it now."""

    work_id: str
    session_id: str
    state: Literal["running", "exited", "missing"]
    exit_code: int | None = None
    oom_killed: bool = False
    started_at: str | None = None

    def failure(self) -> str | None:
        """Why the worker did not finish cleanly, or None."""
        if self.state == "missing":
            return "the sandbox disappeared"
        if self.state != "exited" or self.exit_code == 0:
            return None
        if self.exit_code is None:
            return "the sandbox was created but never started"
        if self.oom_killed:
            return f"the sandbox ran out of memory (exit status {self.exit_code})"
        if self.exit_code == 137:
            return "the sandbox was killed (exit status 137)"
        return f"the worker exited with status {self.exit_code}"


class Launcher(Protocol):
    async def prepare(self, policy: SandboxPolicy, on_progress: Progress | None = None) -> str:
        """Build (or find) the image the sandboxes run; returns its reference."""

    async def start(self, launch: WorkLaunch) -> None:
        """Create and start the item's sandbox; idempotent for an item that has one."""

    async def adopt(self, work_id: str, api_url: str) -> None:
        """Take over a running sandbox a previous dispatcher process started."""

    async def inspect(self, work_id: str) -> LaunchedWork:
        """The item's sandbox now (``missing`` when there is none)."""

    async def launched(self) -> list[LaunchedWork]:
        """Every sandbox of this dispatcher instance, running or not (found by label)."""

    async def logs(self, work_id: str, tail: int = 40) -> str:
        """The last lines the item's worker wrote."""

    async def kill(self, work_id: str) -> None:
        """Kill the item's sandbox at once (its worker gets no chance to stop the item)."""

    async def remove(self, work_id: str) -> None:
        """Delete the item's sandbox and everything it held; no-op when it is gone."""

    def health(self) -> str | None:
        """Why sandboxes cannot be started right now, or None."""

    async def close(self) -> None:
        """Release connections; running sandboxes are left alone."""
