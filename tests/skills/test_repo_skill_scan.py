"""The scan of a repository checkout's ``.claude/skills/``: exactly one level, SKILL.md checked like
an upload's, size and file limits, and nothing followed through a link (the checkout is hostile
input read on the host)."""

from __future__ import annotations

from pathlib import Path

from app.skills.discovery import MAX_SKILLS, scan
from tests.skills.factories import skill_md

MOUNT = "/workspace/widgets"


def _write(root: Path, files: dict[str, bytes]) -> None:
    for path, data in files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_bytes(data)


def _scan(root: Path, max_bytes: int = 100_000, max_files: int = 10) -> tuple[list[str], list[str]]:
    found = scan(root, MOUNT, max_bytes=max_bytes, max_files=max_files)
    return [f"{s.name} {s.directory}" for s in found.skills], found.skipped


def test_valid_skills_are_found_and_bad_ones_skipped_with_the_reason(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            ".claude/skills/greet/SKILL.md": skill_md("greet"),
            ".claude/skills/greet/scripts/run.sh": b"#!/bin/sh\n",
            ".claude/skills/nameless/SKILL.md": b"---\ndescription: no name\n---\nbody\n",
            ".claude/skills/plain/SKILL.md": b"no frontmatter at all\n",
            ".claude/skills/empty/README.md": b"not a skill\n",
            ".claude/skills/notes.md": b"a file next to the skills\n",
            ".claude/skills/greet/nested/SKILL.md": skill_md("nested"),  # one level only
            "other/.claude/skills/deep/SKILL.md": skill_md("deep"),  # at the root only
        },
    )

    skills, skipped = _scan(tmp_path)

    assert skills == [f"greet {MOUNT}/.claude/skills/greet"]
    assert skipped == [
        f"{MOUNT}/.claude/skills/empty: no SKILL.md in the directory",
        f"{MOUNT}/.claude/skills/nameless/SKILL.md: the frontmatter needs a `name` "
        "(lowercase letters, digits and hyphens)",
        f"{MOUNT}/.claude/skills/plain/SKILL.md: must start with YAML frontmatter between '---' lines, "
        "e.g. '---\\nname: my-skill\\ndescription: What it does and when to use it.\\n---'",
    ]


def test_links_are_never_followed(tmp_path: Path) -> None:
    secret = tmp_path / "outside" / "SKILL.md"
    _write(tmp_path / "outside", {"SKILL.md": skill_md("stolen")})
    repo = tmp_path / "repo"
    _write(repo, {".claude/skills/real/SKILL.md": skill_md("real")})
    (repo / ".claude/skills/linked-file").mkdir()
    (repo / ".claude/skills/linked-file/SKILL.md").symlink_to(secret)
    (repo / ".claude/skills/linked-dir").symlink_to(secret.parent)

    skills, skipped = _scan(repo)

    assert skills == [f"real {MOUNT}/.claude/skills/real"]
    assert skipped == [
        f"{MOUNT}/.claude/skills/linked-dir is a link; links are not followed",
        f"{MOUNT}/.claude/skills/linked-file/SKILL.md is not a regular file (links are not followed)",
    ]
    linked_root = tmp_path / "linked-root"
    linked_root.mkdir()
    (linked_root / ".claude").symlink_to(repo / ".claude")
    assert _scan(linked_root) == ([], [f"{MOUNT}/.claude/skills is a link; links are not followed"])


def test_the_limits_of_an_upload_hold(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            ".claude/skills/big/SKILL.md": skill_md("big"),
            ".claude/skills/big/data.bin": b"x" * 5000,
            ".claude/skills/many/SKILL.md": skill_md("many"),
            **{f".claude/skills/many/f{i}.txt": b"." for i in range(5)},
            ".claude/skills/fits/SKILL.md": skill_md("fits"),
        },
    )

    skills, skipped = _scan(tmp_path, max_bytes=4000, max_files=4)

    assert skills == [f"fits {MOUNT}/.claude/skills/fits"]
    limits = "the skill holds more than the 4 files or 4,000 bytes a skill may hold"
    assert skipped == [f"{MOUNT}/.claude/skills/big: {limits}", f"{MOUNT}/.claude/skills/many: {limits}"]


def test_no_skills_directory_means_no_skills(tmp_path: Path) -> None:
    _write(tmp_path, {"README.md": b"hi\n"})
    assert _scan(tmp_path) == ([], [])


def test_at_most_max_skills_per_repository(tmp_path: Path) -> None:
    names = [f"s{i:03d}" for i in range(MAX_SKILLS + 1)]
    _write(tmp_path, {f".claude/skills/{name}/SKILL.md": skill_md(name) for name in names})
    skills, skipped = _scan(tmp_path)
    assert len(skills) == MAX_SKILLS
    assert skipped == [f"{MOUNT}/.claude/skills/{names[-1]}: only the first {MAX_SKILLS} skills are used"]
