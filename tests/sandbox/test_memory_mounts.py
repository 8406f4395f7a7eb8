"""The host side of a memory mount, written by untrusted code: scans read only regular files and
never through a link, only what changed is read, and writes never follow a planted link."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from app.sandbox import memory_mounts as fs


def test_a_scan_reads_changes_only_and_skips_links(tmp_path: Path) -> None:
    root, secret = tmp_path / "store", tmp_path / "host-secret"
    secret.write_text("host only")
    synced = fs.populate(root, [("/keep.md", b"kept"), ("/gone.md", b"bye"), ("/touched.md", b"same")])
    (root / "gone.md").unlink()
    (root / "new").mkdir()
    (root / "new" / "idea.md").write_bytes(b"fresh")
    (root / "touched.md").write_bytes(b"same")  # rewritten with the same bytes
    os.utime(root / "touched.md", ns=(1, 1))
    (root / "link.md").symlink_to(secret)
    (root / "linked-dir").symlink_to(tmp_path)
    (root / "big.md").write_bytes(b"x" * 101)

    scan = fs.scan(root, synced, max_files=10, max_bytes=100)

    assert sorted((c.path, c.data) for c in scan.changed) == [("/big.md", None), ("/new/idea.md", b"fresh")]
    assert scan.deleted == ["/gone.md"]
    assert set(scan.unchanged) == {"/keep.md", "/touched.md"} and scan.unchanged["/touched.md"].mtime_ns == 1
    assert sorted(scan.skipped) == ["/link.md", "/linked-dir"]


def test_writes_do_not_follow_a_planted_link(tmp_path: Path) -> None:
    root, outside = tmp_path / "store", tmp_path / "outside"
    outside.mkdir()
    fs.populate(root, [])
    (root / "notes").symlink_to(outside)

    with pytest.raises(OSError):
        fs.write(root, "/notes/todo.md", b"redirected?")
    (root / "file.md").symlink_to(tmp_path / "victim")
    fs.write(root, "/file.md", b"replaced the link, not its target")

    assert list(outside.iterdir()) == [] and not (tmp_path / "victim").exists()
    assert not (root / "file.md").is_symlink() and (root / "file.md").read_bytes().startswith(b"replaced")
