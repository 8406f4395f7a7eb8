"""The zip a skill version downloads as, in the layout the SDK's worker unpacks.

Every entry sits under one directory named after the skill (``my-skill/SKILL.md``), which the
worker strips; entries are recorded as made on Unix with mode 0755 or 0644, so executable bits
survive extraction (the SDK reduces any mode to one of those two). Entries carry the version's
creation time, so the same version always downloads as the same bytes.
"""

from __future__ import annotations

import io
import stat
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

_UNIX = 3
_EARLIEST = (1980, 1, 1, 0, 0, 0)  # the zip format cannot express earlier times


@dataclass(frozen=True)
class ArchiveFile:
    path: str
    data: bytes
    executable: bool


def _info(name: str, when: datetime, executable: bool) -> zipfile.ZipInfo:
    stamp = max(_EARLIEST, (when.year, when.month, when.day, when.hour, when.minute, when.second))
    info = zipfile.ZipInfo(name, date_time=stamp)
    info.create_system = _UNIX
    info.external_attr = (stat.S_IFREG | (0o755 if executable else 0o644)) << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    return info


def build_archive(directory: str, files: Sequence[ArchiveFile], created_at: datetime) -> bytes:
    """``files`` (paths below the skill's directory) zipped under ``directory/``."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for file in sorted(files, key=lambda f: f.path):
            archive.writestr(_info(f"{directory}/{file.path}", created_at, file.executable), file.data)
    return buffer.getvalue()
