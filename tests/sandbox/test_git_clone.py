"""Host-side clones against a real git smart-HTTP server (git http-backend on loopback): the right
branch or commit, errors by kind, a mirror reused and refreshed, and no token left on disk."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.sandbox.git import Checkout, GitError, RepoCache
from tests.support.git_server import git_http_server, make_repository

TOKEN = "ghp_test_token_123"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str], Path]]:
    root = tmp_path_factory.mktemp("git-root")
    commits = make_repository(root, "acme", "widgets")
    with git_http_server(root, token=TOKEN) as base:
        yield base, commits, root


def _git(path: Path, *args: str) -> str:
    env = {"PATH": "/usr/bin:/bin", "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@e"}
    env |= {"GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@e"}
    done = subprocess.run(
        ["git", "-C", str(path), *args], capture_output=True, text=True, env=env, check=True
    )
    return done.stdout.strip()


def _head(path: Path) -> str:
    return _git(path, "rev-parse", "HEAD")


def _checkout(base: str, token: str | None = TOKEN, **where: str) -> Checkout:
    url = f"{base}/acme/widgets"
    return Checkout(clone_url=url, public_url="https://github.com/acme/widgets", token=token, **where)


async def test_default_branch_branch_and_commit(
    served: tuple[str, dict[str, str], Path], tmp_path: Path
) -> None:
    base, commits, _ = served
    cache = RepoCache(tmp_path / "cache")
    await cache.materialize(_checkout(base), tmp_path / "a")
    assert (
        _head(tmp_path / "a") == commits["main"] and (tmp_path / "a" / "README.md").read_text() == "second\n"
    )
    await cache.materialize(_checkout(base, branch="feature"), tmp_path / "b")
    assert _head(tmp_path / "b") == commits["feature"] and (tmp_path / "b" / "FEATURE.md").exists()
    await cache.materialize(_checkout(base, commit=commits["first"]), tmp_path / "c")
    assert _head(tmp_path / "c") == commits["first"]
    remote = _git(tmp_path / "c", "remote", "get-url", "origin")
    assert remote == "https://github.com/acme/widgets"
    # The token is nowhere on disk: not in the checkouts, not in the mirror.
    for path in (tmp_path / "cache").rglob("*"):
        if path.is_file():
            assert TOKEN.encode() not in path.read_bytes(), path
    assert len(list((tmp_path / "cache").glob("*.git"))) == 1  # one mirror, reused


async def test_a_new_commit_reaches_the_next_checkout(
    served: tuple[str, dict[str, str], Path], tmp_path: Path
) -> None:
    base, _, root = served
    cache = RepoCache(tmp_path / "cache")
    await cache.materialize(_checkout(base), tmp_path / "before")
    work = root / "_work" / "acme" / "widgets"
    (work / "NEW.md").write_text("new\n")
    _git(work, "add", ".")
    _git(work, "commit", "-qm", "new")
    _git(work, "push", "-q", str(root / "acme" / "widgets"), "main")
    await cache.materialize(_checkout(base), tmp_path / "after")
    assert (tmp_path / "after" / "NEW.md").exists() and not (tmp_path / "before" / "NEW.md").exists()


@pytest.mark.parametrize(
    ("token", "repo", "where", "kind"),
    [
        ("wrong", "widgets", {}, "authentication"),
        (None, "widgets", {}, "authentication"),
        (TOKEN, "missing", {}, "not_found"),
        (TOKEN, "widgets", {"branch": "nope"}, "checkout"),
        (TOKEN, "widgets", {"commit": "0" * 40}, "checkout"),
    ],
)
async def test_failures_by_kind(
    served: tuple[str, dict[str, str], Path],
    tmp_path: Path,
    token: str | None,
    repo: str,
    where: dict[str, str],
    kind: str,
) -> None:
    base, _, _ = served
    checkout = Checkout(
        clone_url=f"{base}/acme/{repo}", public_url=f"https://github.com/acme/{repo}", token=token, **where
    )
    with pytest.raises(GitError) as caught:
        await RepoCache(tmp_path / "cache").materialize(checkout, tmp_path / "out")
    assert caught.value.kind == kind, caught.value.message
