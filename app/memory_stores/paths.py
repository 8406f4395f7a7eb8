"""Memory paths (``/projects/foo/notes.md``) and the mount slug of a store.

A path starts with ``/`` and has 1-20 segments; a segment is not empty, ``.`` or ``..``; no
control or format characters, no U+2028/U+2029; Unicode NFC; at most 1,024 UTF-8 bytes.
Paths are case-sensitive and compared as strings (code point order is UTF-8 byte order).
"""

from __future__ import annotations

import re
import unicodedata

from app.errors import InvalidRequest
from app.shared.text import utf8_size

MAX_PATH_BYTES = 1024
MAX_SEGMENTS = 20
MOUNT_ROOT = "/mnt/memory"
_BANNED_CATEGORIES = ("Cc", "Cf", "Zl", "Zp")
_NOT_ALNUM = re.compile(r"[^a-z0-9]+")


def _fail(field: str, message: str) -> InvalidRequest:
    return InvalidRequest(f"{field}: {message}")


def _check_text(value: str, field: str) -> None:
    if utf8_size(value, field) > MAX_PATH_BYTES:
        raise _fail(field, f"at most {MAX_PATH_BYTES} bytes (UTF-8)")
    if any(unicodedata.category(c) in _BANNED_CATEGORIES for c in value):
        raise _fail(field, "control characters, format characters and line separators are not allowed")
    if not unicodedata.is_normalized("NFC", value):
        raise _fail(field, "must be in Unicode Normalization Form C (NFC)")


def _check_segments(segments: list[str], field: str) -> None:
    if len(segments) > MAX_SEGMENTS:
        raise _fail(field, f"at most {MAX_SEGMENTS} segments")
    for segment in segments:
        if segment in ("", ".", ".."):
            raise _fail(field, "segments cannot be empty, '.' or '..'")


def check_path(path: str, field: str = "path") -> str:
    """``path`` if it is a valid memory path (``/notes/todo.md``), else a 400 saying why."""
    if not path.startswith("/"):
        raise _fail(field, f"must start with '/', e.g. /{path}" if path else "must not be empty")
    _check_text(path, field)
    _check_segments(path[1:].split("/"), field)
    return path


def check_prefix(prefix: str, field: str = "path_prefix") -> str:
    """A list prefix: ``/`` or whole segments ending with ``/`` (``/notes/``)."""
    if not prefix.startswith("/") or not prefix.endswith("/"):
        raise _fail(field, "must start and end with '/', e.g. /notes/")
    _check_text(prefix, field)
    if prefix != "/":
        _check_segments(prefix[1:-1].split("/"), field)
    return prefix


def parents(path: str) -> list[str]:
    """The directories above a memory path: ``/a/b/c.md`` -> ``["/a", "/a/b"]``."""
    segments = path[1:].split("/")
    return ["/" + "/".join(segments[:i]) for i in range(1, len(segments))]


def mount_slug(name: str) -> str:
    """The store's directory name under /mnt/memory: lowercased, each run of characters other than
    ASCII letters and digits made one hyphen."""
    return _NOT_ALNUM.sub("-", name.lower())


def mount_path(name: str) -> str:
    return f"{MOUNT_ROOT}/{mount_slug(name)}"
