"""read, write and edit: plain file tools with the hosted result texts."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

from output import Result, Spiller, error, text

_TEXT_CAP = 256 * 1024
_IMAGE_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
}
_IMAGE_CAP = 5 * 1024 * 1024
_PDF_CAP = 20 * 1024 * 1024


# Where the workspace is inside a sandbox container. A tool server whose workspace is elsewhere
# (the local, unisolated backend: a directory per session on the host) serves that path from
# its own workspace, so `/workspace/x` is the session's file there too, never the host's.
SANDBOX_WORKSPACE = Path("/workspace")


def in_workspace(workspace: Path, path: Path) -> Path:
    """An absolute path as the session sees it, on this server's disk."""
    if workspace != SANDBOX_WORKSPACE and path.is_relative_to(SANDBOX_WORKSPACE):
        return workspace / path.relative_to(SANDBOX_WORKSPACE)
    return path


def locate(workspace: Path, raw: Any) -> tuple[Path, str]:
    """Where a `file_path` is on this server's disk, and how to name it back to the session: an
    absolute path as the session wrote it (whatever disk serves it), a relative one in full."""
    if not isinstance(raw, str) or not raw:
        raise ValueError("file_path must be a non-empty string")
    path = Path(raw)
    if path.is_absolute():
        return in_workspace(workspace, path), str(path)
    return workspace / path, str(workspace / path)


def read(inp: dict[str, Any], workspace: Path, spiller: Spiller) -> Result:
    path, shown = locate(workspace, inp.get("file_path"))
    if not path.exists():
        return error(f"File does not exist: {shown}")
    if path.is_dir():
        return error(f"{shown} is a directory; use bash `ls` or glob to list it")
    kind = path.suffix.lower()
    if kind in _IMAGE_TYPES:
        return _binary_block(path, shown, "image", _IMAGE_TYPES[kind], _IMAGE_CAP)
    if kind == ".pdf":
        return _binary_block(path, shown, "document", "application/pdf", _PDF_CAP)
    with path.open("rb") as handle:
        if b"\0" in handle.read(8192):
            size = path.stat().st_size
            return error(f"{shown} is a binary file ({size} bytes); inspect it with bash")
    start, end = _view_range(inp.get("view_range"))
    return text(spiller.cap("read", _numbered(path, start, end)))


def _view_range(raw: Any) -> tuple[int, int]:
    if raw is None:
        return 1, 0
    if not (isinstance(raw, list) and len(raw) == 2 and all(isinstance(n, int) for n in raw)):
        raise ValueError("view_range must be [start_line, end_line]")
    start, end = raw
    if start < 1 or (end > 0 and end < start):
        raise ValueError("view_range is 1-based and inclusive: start >= 1, end >= start or end <= 0")
    return start, end


def _numbered(path: Path, start: int, end: int) -> str:
    lines: list[str] = []
    size = 0
    count = 0
    with path.open(encoding="utf-8", errors="replace", newline="") as handle:
        for count, line in enumerate(handle, 1):
            if count < start:
                continue
            if (end > 0 and count > end) or size > _TEXT_CAP:
                break
            lines.append(f"{count}\t{line.rstrip(chr(10)).rstrip(chr(13))}")
            size += len(lines[-1])
    if size > _TEXT_CAP:
        lines.append(f"[read stopped after {_TEXT_CAP // 1024} KiB; use view_range to read further]")
    if not lines:
        return "(empty file)" if count == 0 else f"(no lines in range; the file has {count} lines)"
    return "\n".join(lines)


def _binary_block(path: Path, shown: str, block: str, media_type: str, cap: int) -> Result:
    size = path.stat().st_size
    if size > cap:
        return error(f"{shown} is {size} bytes; the {block} limit is {cap} bytes")
    data = base64.b64encode(path.read_bytes()).decode()
    return [{"type": block, "source": {"type": "base64", "media_type": media_type, "data": data}}], False


def write(inp: dict[str, Any], workspace: Path) -> Result:
    path, shown = locate(workspace, inp.get("file_path"))
    content = inp.get("content")
    if not isinstance(content, str):
        return error("Missing required parameter: content")
    if path.is_dir():
        return error(f"{shown} is a directory")
    existed = path.exists()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content, encoding="utf-8")
    return text(f"File {'updated' if existed else 'created'}: {shown}")


def edit(inp: dict[str, Any], workspace: Path) -> Result:
    path, shown = locate(workspace, inp.get("file_path"))
    old, new = inp.get("old_string"), inp.get("new_string")
    if not isinstance(old, str) or not isinstance(new, str):
        return error("old_string and new_string are required strings")
    if not old:
        return error("old_string must not be empty; use write to create or overwrite a file")
    if old == new:
        return error("old_string and new_string are identical; nothing to change")
    if not path.is_file():
        return error(f"File does not exist: {shown}")
    body = path.read_text(encoding="utf-8")
    count = body.count(old)
    if count == 0:
        return error(f"old_string was not found in {shown}")
    if count > 1 and not inp.get("replace_all"):
        return error(
            f"old_string occurs {count} times in {shown}; add surrounding context to make it "
            "unique, or set replace_all: true"
        )
    path.write_text(body.replace(old, new), encoding="utf-8")
    return text(f"File updated: {shown} ({count} replacement{'s' if count > 1 else ''})")
