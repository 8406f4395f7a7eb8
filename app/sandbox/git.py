"""Cloning GitHub repositories on the host side, for session resources.

The token never reaches the container nor any file: git gets it as an ``http.extraHeader`` through
``GIT_CONFIG_*`` environment variables of its own process. Each repository is mirrored once under
the cache directory and fetched (with the session's token, so a cached copy never stands in for an
authorization the token does not have) before each session's checkout, which is a local clone of
the mirror whose ``origin`` is the repository's URL without credentials.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import fcntl
import hashlib
import os
import shutil
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

ErrorKind = Literal["not_found", "authentication", "forbidden", "checkout", "clone"]
_TIMEOUT_S = 600.0


class GitError(Exception):
    def __init__(self, kind: ErrorKind, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


@dataclass(frozen=True)
class Checkout:
    """What to clone: the URL git fetches from, the token (or None), and a branch or commit."""

    clone_url: str
    public_url: str
    token: str | None
    branch: str | None = None
    commit: str | None = None


def _environment(token: str | None) -> dict[str, str]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": "/nonexistent",
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": "/dev/null",
        "GIT_ASKPASS": "/bin/false",
    }
    if token:
        basic = base64.b64encode(f"x-access-token:{token}".encode()).decode()
        env.update(
            {
                "GIT_CONFIG_COUNT": "1",
                "GIT_CONFIG_KEY_0": "http.extraHeader",
                "GIT_CONFIG_VALUE_0": f"Authorization: Basic {basic}",
            }
        )
    return env


def _classify(stderr: str) -> ErrorKind:
    """The kind of a failed fetch from git's message (status codes only as "error: NNN", never
    any number: a URL's port may hold "401")."""
    text = stderr.lower()
    if "not found" in text or "error: 404" in text or "does not appear to be a git repository" in text:
        return "not_found"
    if "error: 403" in text or "forbidden" in text:
        return "forbidden"
    if any(s in text for s in ("authentication failed", "could not read username", "error: 401", "prompts")):
        return "authentication"
    return "clone"


async def _git(*args: str, token: str | None = None, cwd: Path | None = None) -> str:
    process = await asyncio.create_subprocess_exec(
        "git",
        *args,
        cwd=cwd,
        env=_environment(token),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), _TIMEOUT_S)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise GitError("clone", f"git {args[0]} timed out after {_TIMEOUT_S:.0f} s") from None
    if process.returncode != 0:
        message = err.decode(errors="replace").strip()
        raise GitError(_classify(message), message[-2000:] or f"git {args[0]} failed")
    return out.decode(errors="replace").strip()


class RepoCache:
    """Mirrors of repositories under ``root`` (one per clone URL), shared by all sessions."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._locks: dict[str, asyncio.Lock] = {}

    def _mirror(self, clone_url: str) -> Path:
        return self.root / (hashlib.sha256(clone_url.encode()).hexdigest()[:32] + ".git")

    @contextlib.asynccontextmanager
    async def _locked(self, mirror: Path) -> AsyncIterator[None]:
        """One update of a mirror at a time, in this process and across processes."""
        async with self._locks.setdefault(str(mirror), asyncio.Lock()):
            self.root.mkdir(parents=True, exist_ok=True)
            handle = await asyncio.to_thread(open, f"{mirror}.lock", "a")
            try:
                await asyncio.to_thread(fcntl.flock, handle.fileno(), fcntl.LOCK_EX)
                yield
            finally:
                handle.close()

    async def _update(self, checkout: Checkout) -> Path:
        mirror = self._mirror(checkout.clone_url)
        async with self._locked(mirror):
            if (mirror / "HEAD").exists():
                await _git("-C", str(mirror), "fetch", "-q", "--prune", "origin", token=checkout.token)
                return mirror
            staging = Path(tempfile.mkdtemp(dir=self.root, prefix=".clone-"))
            try:
                await _git(
                    "clone", "-q", "--mirror", checkout.clone_url, str(staging / "m"), token=checkout.token
                )
                shutil.rmtree(mirror, ignore_errors=True)
                os.replace(staging / "m", mirror)
            finally:
                shutil.rmtree(staging, ignore_errors=True)
        return mirror

    async def materialize(self, checkout: Checkout, target: Path) -> None:
        """Fetch (or first clone) the repository, then check it out at ``target`` (a new directory)."""
        mirror = await self._update(checkout)
        args = ["clone", "-q"]
        if checkout.branch:
            args += ["--branch", checkout.branch]
        try:
            await _git(*args, str(mirror), str(target))
        except GitError as error:
            kind: ErrorKind = "checkout" if checkout.branch else "clone"
            raise GitError(kind, f"branch {checkout.branch!r}: {error.message}") from None
        if checkout.commit:
            try:
                await _git("-C", str(target), "checkout", "-q", "--detach", checkout.commit)
            except GitError as error:
                raise GitError("checkout", f"commit {checkout.commit!r}: {error.message}") from None
        await _git("-C", str(target), "remote", "set-url", "origin", checkout.public_url)
