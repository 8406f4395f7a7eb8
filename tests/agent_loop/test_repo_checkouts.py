"""The repository mounter's one checkout per (session, repository): scanned for skills before the
first model request and copied into the sandbox by the tool step, with no clone left on disk
when nothing is copied here, and a copy after such a scan still getting the repository."""

from __future__ import annotations

import uuid
from pathlib import Path

from app.agent_loop.repositories import RepoJob, RepoMounter
from app.config import Settings
from app.sandbox.git import Checkout, RepoCache
from app.sandbox.local_backend import LocalBackend
from app.skills.bundle import Limits
from tests.skills.factories import skill_md
from tests.support.git_server import add_repository

MOUNT = "/workspace/widgets"


def _job(root: Path) -> RepoJob:
    add_repository(root, "acme", "widgets", {".claude/skills/ship/SKILL.md": skill_md("ship"), "a.txt": b"a"})
    bare = str(root / "acme" / "widgets")
    checkout = Checkout(clone_url=bare, public_url="https://github.com/acme/widgets", token=None)
    return RepoJob("res_1", "https://github.com/acme/widgets", MOUNT, checkout, key="k1")


async def test_a_scan_alone_leaves_no_checkout_and_a_later_copy_still_works(tmp_path: Path) -> None:
    job = _job(tmp_path / "served")
    work = tmp_path / "checkouts"
    mounter = RepoMounter(RepoCache(tmp_path / "git"), work, Limits(max_bytes=100_000, max_files=10))
    backend = LocalBackend(Settings(sandbox_backend="local", sandbox_state_dir=tmp_path / "sandbox"))
    session_id = f"sesn_{uuid.uuid4().hex[:12]}"
    try:
        found = await mounter.skills(session_id, [job])
        left = sorted(p.name for p in work.iterdir())
        errors = await mounter.mount(backend, session_id, [job])
        copied = Path(backend.workspace(session_id)) / "widgets"
        content = (copied / "a.txt").read_text(), (copied / ".claude/skills/ship/SKILL.md").exists()
        again = await mounter.skills(session_id, [job])  # the first scan's result, not a new clone
    finally:
        await mounter.forget(session_id)
        await backend.remove(session_id)
        await backend.close()

    assert [(s.name, s.directory) for s in found.skills] == [("ship", f"{MOUNT}/.claude/skills/ship")]
    assert left == [] and errors == []
    assert content == ("a", True)
    assert again == found and sorted(p.name for p in work.iterdir()) == []
