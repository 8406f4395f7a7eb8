"""Helpers for `mas sandbox ...`: build the base image and an environment image with progress."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from collections.abc import Callable
from typing import TextIO

from app.config import Settings

_STEP = re.compile(r"^Step (\d+)/(\d+) : (.*)$")
_BAR = 30


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
    """Renders `Step N/M` lines of an image build as one updating bar (plain lines off a tty)."""

    def __init__(self, stream: TextIO = sys.stderr) -> None:
        self.stream = stream
        self.tty = stream.isatty()

    async def __call__(self, line: str) -> None:
        match = _STEP.match(line)
        if match is None:
            if not self.tty:
                self.stream.write(f"  {line}\n")
            return
        done, total, what = int(match.group(1)), int(match.group(2)), match.group(3)
        filled = _BAR * done // total
        bar = f"[{'#' * filled}{'-' * (_BAR - filled)}] {done}/{total} {what[:60]}"
        self.stream.write(f"\r{bar}\033[K" if self.tty else f"{bar}\n")
        self.stream.flush()

    def finish(self) -> None:
        if self.tty:
            self.stream.write("\n")


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
