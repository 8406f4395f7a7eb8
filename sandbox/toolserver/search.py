"""glob and grep, both on ripgrep (hidden and git-ignored files included, `.git/` skipped).

glob lists files newest first; grep lists matching files by default (the hosted format) and
can show lines (`output_mode: "content"`, honouring `context`) or counts (`"count"`).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

from files import in_workspace
from output import Result, Spiller, error, text

DEFAULT_CAP = 100
_BASE = ["rg", "--hidden", "--no-ignore", "--no-messages", "--color", "never", "--glob", "!.git"]


def _root(workspace: Path, raw: Any) -> Path:
    if raw is None or raw == "":
        return workspace
    if not isinstance(raw, str):
        raise ValueError("path must be a string")
    path = Path(raw)
    return in_workspace(workspace, path) if path.is_absolute() else workspace / path


def _rg(args: list[str], root: Path, timeout: float) -> subprocess.CompletedProcess[str]:
    # Walking / from a container must not wander into /proc and /sys.
    extra = ["--one-file-system"] if root == Path("/") else []
    return subprocess.run(
        [*_BASE, *extra, *args, "--", str(root)],
        capture_output=True,
        text=True,
        errors="replace",
        timeout=timeout,
        check=False,
    )


def _newest_first(paths: list[str]) -> list[str]:
    def mtime(path: str) -> float:
        try:
            return os.stat(path).st_mtime
        except OSError:
            return 0.0

    return sorted(paths, key=mtime, reverse=True)


def _cap(lines: list[str], limit: int, what: str) -> str:
    shown = "\n".join(lines[:limit])
    if len(lines) > limit:
        shown += f"\n[showing {limit} of {len(lines)} {what}]"
    return shown


def glob(inp: dict[str, Any], workspace: Path, timeout: float) -> Result:
    pattern = inp.get("pattern")
    if not isinstance(pattern, str) or not pattern:
        return error("Missing required parameter: pattern")
    root = _root(workspace, inp.get("path"))
    if not root.is_dir():
        return error(f"Path does not exist or is not a directory: {root}")
    done = _rg(["--glob", pattern, "--files"], root, timeout)
    if done.returncode == 2 and done.stderr:
        return error(done.stderr.strip())
    files = [line for line in done.stdout.splitlines() if line]
    if not files:
        return text("No files found")
    return text(_cap(_newest_first(files), DEFAULT_CAP, "files, newest first"))


def grep(inp: dict[str, Any], workspace: Path, timeout: float, spiller: Spiller) -> Result:
    pattern = inp.get("pattern")
    if not isinstance(pattern, str) or not pattern:
        return error("Missing required parameter: pattern")
    root = _root(workspace, inp.get("path"))
    if not root.exists():
        return error(f"Path does not exist: {root}")
    mode = inp.get("output_mode") or "files_with_matches"
    if mode not in ("files_with_matches", "content", "count"):
        return error('output_mode must be "files_with_matches", "content" or "count"')
    done = _rg([*_grep_flags(inp, mode), "-e", pattern], root, timeout)
    if done.returncode == 2:
        return error(done.stderr.strip() or "grep failed")
    lines = [line for line in done.stdout.splitlines() if line]
    if not lines:
        return text("No matches found")
    limit = _head_limit(inp.get("head_limit"), mode)
    if mode == "files_with_matches":
        return text(_cap(_newest_first(lines), limit, "files, newest first"))
    return text(spiller.cap("grep", _cap(lines, limit, "lines")))


def _grep_flags(inp: dict[str, Any], mode: str) -> list[str]:
    flags = {
        "files_with_matches": ["-l"],
        "count": ["-c", "--with-filename"],
        "content": ["-n", "--no-heading", "--with-filename"],
    }[mode]
    context = inp.get("context")
    if mode == "content" and isinstance(context, int) and context > 0:
        flags += ["-C", str(context)]
    if inp.get("case_insensitive") or inp.get("-i"):
        flags.append("-i")
    if isinstance(inp.get("glob"), str) and inp["glob"]:
        flags += ["--glob", inp["glob"]]
    return flags


def _head_limit(raw: Any, mode: str) -> int:
    if isinstance(raw, int) and raw > 0:
        return raw
    # File lists are capped like the hosted tool; long line output is spilled instead.
    return DEFAULT_CAP if mode == "files_with_matches" else 10**9
