"""The SDK worker a dispatched sandbox runs, bundled from this very Python installation.

No registry is needed and nothing is downloaded or built into an image: the `anthropic` package
and its dependency closure are copied once from the installation mas runs on (the SDK mas itself
is tested against) into ``<state dir>/dispatch-sdk/<digest>/site``, with the entry script next to
it, and bind-mounted read-only at ``/opt/mas/dispatch`` (as the tool server of cloud sandboxes
is). The environment's image stays as it is; its ``python3`` runs the worker. The packages are
not on the image's default ``sys.path`` (the entry script adds them), so the agent's own
``python3`` and ``pip`` never see them. Their bytecode is compiled here, once, by importing what
the worker uses; the compiled parts (pydantic-core, jiter) need the image's CPython to be of this
process's minor version (3.11, as in the base image), which the launcher checks before serving.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from importlib.metadata import Distribution, PackageNotFoundError, distribution
from pathlib import Path

from packaging.requirements import Requirement

from app.config import Settings
from app.sandbox.interface import SandboxError

MOUNT = "/opt/mas/dispatch"
SITE = f"{MOUNT}/site"
ENTRY = f"{MOUNT}/entry.py"
RECIPE_VERSION = "1"
# What the worker imports: importing it checks the bundle and leaves its bytecode in the bundle.
WORKER_IMPORTS = (
    "import anthropic, httpx2; from anthropic.lib.environments import EnvironmentWorker; "
    "import anthropic.lib.tools.agent_toolset, anthropic.lib.tools._memories"
)


def _name(dist: Distribution) -> str:
    return str(dist.metadata["Name"]).lower().replace("_", "-")


def closure(root: str = "anthropic") -> list[Distribution]:
    """``root`` and every distribution it needs here (extras off, markers of this interpreter)."""
    seen: dict[str, Distribution] = {}
    pending = [root]
    while pending:
        name = pending.pop()
        key = name.lower().replace("_", "-")
        if key in seen:
            continue
        try:
            dist = distribution(name)
        except PackageNotFoundError as exc:
            raise SandboxError(f"{name} is not installed; mas cannot bundle the SDK worker") from exc
        seen[key] = dist
        for text in dist.requires or []:
            requirement = Requirement(text)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                pending.append(requirement.name)
    return sorted(seen.values(), key=_name)


def entry_script(settings: Settings) -> Path:
    return settings.sandbox_assets_dir.resolve() / "dispatch" / "entry.py"


def digest(settings: Settings, dists: list[Distribution]) -> str:
    value = hashlib.sha256(f"{RECIPE_VERSION}\n{sys.version_info[:2]}\n".encode())
    value.update(entry_script(settings).read_bytes())
    for dist in dists:
        value.update(f"{_name(dist)}=={dist.version}\n".encode())
        value.update((dist.read_text("RECORD") or "").encode())
    return value.hexdigest()[:24]


def ensure(settings: Settings) -> Path:
    """The bundle directory (made once per SDK version and entry script; blocking)."""
    dists = closure()
    root = settings.sandbox_state_dir.resolve() / "dispatch-sdk"
    target = root / digest(settings, dists)
    if target.is_dir():
        return target

    def fill(partial: Path) -> None:
        for dist in dists:
            copy_distribution(dist, partial / "site")
        shutil.copyfile(entry_script(settings), partial / "entry.py")
        _compile(partial / "site")

    publish(target, fill)
    return target


def publish(target: Path, fill: Callable[[Path], None]) -> None:
    """Make ``target`` whole or not at all: filled in a partial directory beside it, made readable
    by any user (the sandbox's, the proxy's), then renamed into place; a process that lost the
    race to another keeps the other's."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix=".partial-", dir=target.parent))
    try:
        fill(partial)
        for path in [partial, *partial.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)
        try:
            partial.rename(target)
        except OSError:  # another process made it first
            if not target.is_dir():
                raise
    finally:
        shutil.rmtree(partial, ignore_errors=True)


def copy_distribution(dist: Distribution, site: Path) -> None:
    for entry in dist.files or []:
        parts = Path(str(entry)).parts
        if not parts or parts[0] == ".." or "__pycache__" in parts:
            continue  # console scripts live outside site-packages; bytecode is made by _compile
        source = Path(str(dist.locate_file(entry)))
        if source.is_file():
            destination = site / Path(str(entry))
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination)


def _compile(site: Path) -> None:
    code = f"import sys; sys.path.insert(0, {str(site)!r}); {WORKER_IMPORTS}"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONDONTWRITEBYTECODE")}
    done = subprocess.run(
        [sys.executable, "-I", "-c", code], capture_output=True, text=True, timeout=600, env=env, check=False
    )
    if done.returncode != 0:
        raise SandboxError(f"the bundled SDK worker does not import: {done.stderr.strip()[-2000:]}")
