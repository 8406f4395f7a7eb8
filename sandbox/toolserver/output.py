"""Result blocks and the spill rule shared by every tool.

A tool result never carries more than LIMIT characters: beyond that the full text goes to a
file in the sandbox and the model gets a preview plus the path (hosted behaviour since 2026-05).
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path
from typing import Any

LIMIT = 100_000

Content = list[dict[str, Any]]
Result = tuple[Content, bool]


def text(value: str, is_error: bool = False) -> Result:
    # The Messages API rejects empty text blocks, so an empty result says so in words.
    return [{"type": "text", "text": value or "(no output)"}], is_error


def error(message: str) -> Result:
    return text(message, is_error=True)


class Spiller:
    """Writes oversized outputs to numbered files under one directory."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._counter = itertools.count(1)

    def new_path(self, tool: str) -> Path:
        self.directory.mkdir(parents=True, exist_ok=True)
        return self.directory / f"{tool}-{os.getpid()}-{next(self._counter)}.txt"

    def spill(self, tool: str, full: str) -> Path:
        path = self.new_path(tool)
        path.write_text(full, encoding="utf-8", errors="replace")
        return path

    def cap(self, tool: str, full: str, keep_tail: bool = False) -> str:
        """Return ``full`` if it fits, else a note with the spill path and a preview."""
        if len(full) <= LIMIT:
            return full
        return note_and_preview(self.spill(tool, full), full, len(full), keep_tail)


def note_and_preview(path: Path, full: str, total: int, keep_tail: bool) -> str:
    part = "last" if keep_tail else "first"
    preview = full[-LIMIT:] if keep_tail else full[:LIMIT]
    note = f"[output truncated: showing the {part} {LIMIT} of {total} characters; full output in {path}]"
    return f"{note}\n{preview}" if keep_tail else f"{preview}\n{note}"
