"""Where a file resource is mounted: rooted under /mnt/session/uploads, as on the hosted service.

``"data.csv"`` and ``"/data.csv"`` both mount at ``/mnt/session/uploads/data.csv``, ``"/tmp/x"`` at
``/mnt/session/uploads/tmp/x``; no path mounts at ``/mnt/session/uploads/<file id>``. A path already
under ``/mnt/session/uploads/`` is kept as it is. ``..`` segments are refused, and so are two
mounts at one path or one mount inside another's path.
"""

from __future__ import annotations

from collections.abc import Iterable

from app.errors import InvalidRequest

UPLOADS = "/mnt/session/uploads"
MAX_PATH = 1024


def upload_mount_path(raw: str | None, file_id: str) -> str:
    if raw is None or raw.strip() == "":
        return f"{UPLOADS}/{file_id}"
    if len(raw) > MAX_PATH or any(ord(c) < 32 for c in raw) or "\\" in raw:
        raise InvalidRequest(f'mount path "{raw[:200]}" is not a valid path')
    segments = [s for s in raw.split("/") if s not in ("", ".")]
    if ".." in segments:
        raise InvalidRequest(f'mount path "{raw}" escapes /uploads/')
    if not segments:
        raise InvalidRequest(f'mount path "{raw}" names no file under /uploads/')
    path = "/" + "/".join(segments)
    return path if path.startswith(UPLOADS + "/") else UPLOADS + path


def relative(mount_path: str) -> str:
    """The path under the uploads directory (how the sandbox places the file)."""
    return mount_path.removeprefix(UPLOADS + "/")


def _overlap(a: str, b: str) -> bool:
    return a == b or a.startswith(b + "/") or b.startswith(a + "/")


def check_overlaps(new: str, existing: Iterable[str]) -> None:
    for other in existing:
        if _overlap(new, other):
            shown = "/uploads/" + relative(new)
            raise InvalidRequest(f"mount_path overlaps another resource: {shown}")
