"""Helpers for `mas sandbox ...`: build the base image and an environment image with progress."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from collections.abc import Callable
from typing import TextIO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from app.config import Settings

_STEP = re.compile(r"^Step (\d+)/(\d+) : (.*)$")
_WHAT = 60


def build_base_image(settings: Settings, force: bool = False, echo: Callable[[str], None] = print) -> int:
    """Run sandbox/build-base.sh with the configured tags and mirror; returns its exit code."""
    script = settings.sandbox_assets_dir.resolve() / "build-base.sh"
    env = {
        **os.environ,
        "MAS_SANDBOX_BASE_IMAGE": settings.sandbox_base_image,
        "MAS_SANDBOX_PROXY_IMAGE": settings.sandbox_proxy_image,
    }
    if settings.sandbox_apt_mirror:
        env["MAS_SANDBOX_APT_MIRROR"] = settings.sandbox_apt_mirror
    with subprocess.Popen(
        ["bash", str(script), *(["--force"] if force else [])],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    ) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            echo(line.rstrip())
        return proc.wait()


class ProgressBar:
    """Shows an image build. On a terminal (stdout is a TTY): one rich progress bar driven by the
    `Step N/M` lines of the build, with the current step (or phase) and the elapsed time. Anywhere
    else (a pipe, CI): every line, plainly, on `stream`."""

    def __init__(self, stream: TextIO = sys.stderr, interactive: bool | None = None) -> None:
        self.stream = stream
        self.tty = sys.stdout.isatty() if interactive is None else interactive
        self._bar: Progress | None = None
        self._task: TaskID | None = None
        self.tail: list[str] = []  # the last lines, for the message of a failed build

    async def __call__(self, line: str) -> None:
        self.feed(line)

    def feed(self, line: str) -> None:
        self.tail = [*self.tail[-39:], line]
        if not self.tty:
            self.stream.write(f"  {line}\n")
            self.stream.flush()
            return
        bar, task = self._started()
        match = _STEP.match(line)
        if match is None:
            bar.update(task, what=line.strip()[:_WHAT])
            return
        done, total = int(match.group(1)), int(match.group(2))
        bar.update(task, completed=done - 1, total=total, what=match.group(3)[:_WHAT])

    def _started(self) -> tuple[Progress, TaskID]:
        if self._bar is None or self._task is None:
            columns = (
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
            )
            console = Console(file=self.stream, force_terminal=True)
            self._bar = Progress(*columns, TextColumn("{task.fields[what]}"), console=console)
            self._task = self._bar.add_task("building", total=None, what="")
            self._bar.start()
        return self._bar, self._task

    def finish(self) -> None:
        if self._bar is not None and self._task is not None:
            total = self._bar.tasks[0].total
            if total is not None:
                self._bar.update(self._task, completed=total)
            self._bar.stop()


def build_environment_image(settings: Settings, packages: dict[str, list[str]]) -> str:
    """Build (or find cached) the image of a `packages` spec, showing progress; returns its tag."""
    from app.sandbox.docker_backend import DockerBackend

    async def run() -> str:
        backend = DockerBackend(settings)
        bar = ProgressBar()
        try:
            return await backend.images.ensure(packages, bar)
        finally:
            bar.finish()
            await backend.close()

    return asyncio.run(run())


def remove_instance_sandboxes(settings: Settings) -> int:
    """Remove every sandbox of this mas instance (`MAS_SANDBOX_INSTANCE`), e.g. once a test run's
    server has stopped: sandboxes outlive their server on purpose, so a restart can adopt them."""
    from app.sandbox.factory import create_backend

    async def remove() -> int:
        backend = create_backend(settings)
        try:
            return await backend.reap_orphans(set())
        finally:
            await backend.close()

    return asyncio.run(remove())


def engine_findings(settings: Settings) -> list[tuple[str, str | None, str]]:
    """`mas doctor`'s Docker checks: (check, problem or None, what to do), the engine first."""
    from app.sandbox.docker_backend import DockerBackend

    async def check() -> list[tuple[str, str | None, str]]:
        backend = DockerBackend(settings)
        try:
            problem = await backend.probe()
            findings = [("docker", problem, "start the Docker engine, or check DOCKER_HOST and permissions")]
            if problem is not None:
                return findings
            for image in (settings.sandbox_base_image, settings.sandbox_proxy_image):
                missing = None if await backend.images.exists(image) else f"{image} is not built"
                findings.append((f"image {image}", missing, "run `mas sandbox base`"))
            return findings
        finally:
            await backend.close()

    return asyncio.run(check())
