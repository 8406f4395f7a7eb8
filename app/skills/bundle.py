"""An uploaded skill, checked: safe relative paths, one skill directory, SKILL.md, limits.

Clients upload a skill as repeated ``files[]`` parts whose filenames carry the directory
(``my-skill/SKILL.md``, ``my-skill/scripts/run.py``), as the SDK and ``files_from_dir`` send
them, or as one ``.zip`` of that directory. Files directly at the root (``SKILL.md``,
``scripts/run.py``) are taken as the skill directory's contents too.

Multipart parts carry no file mode, so an uploaded file is executable when it starts with
``#!``; a zip keeps the modes it recorded. Nothing but regular files is accepted: links,
devices, absolute paths, ``..`` and other tricks are refused with a 400 naming the file.
"""

from __future__ import annotations

import io
import stat
import unicodedata
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from app.errors import InvalidRequest, RequestTooLarge
from app.shared.uploads import UploadedFile
from app.skills.frontmatter import SkillHeader, parse_header

SKILL_FILE = "SKILL.md"
MAX_PATH_BYTES = 1024
MAX_SEGMENT_BYTES = 255
_ZIP_UNIX_HOSTS = (3, 19)  # creator systems whose external_attr holds a Unix st_mode


@dataclass(frozen=True)
class Limits:
    max_bytes: int
    max_files: int


@dataclass(frozen=True)
class BundleFile:
    """A file below the skill's directory (``SKILL.md``, ``scripts/run.py``)."""

    path: str
    data: bytes
    executable: bool


@dataclass(frozen=True)
class SkillBundle:
    header: SkillHeader
    files: tuple[BundleFile, ...]

    @property
    def size_bytes(self) -> int:
        return sum(len(f.data) for f in self.files)


@dataclass(frozen=True)
class _Entry:
    where: str  # how errors name it: files[3] 'a/b.py', or the archive member
    name: str
    data: bytes
    executable: bool


def _fail(where: str, message: str) -> InvalidRequest:
    return InvalidRequest(f"{where}: {message}")


def _too_large(total: int, limits: Limits) -> RequestTooLarge:
    return RequestTooLarge(
        f"files: the skill holds {total:,} bytes; the limit is {limits.max_bytes:,} bytes in all"
    )


# --- zip uploads --------------------------------------------------------------------------------


def _is_zip(upload: UploadedFile) -> bool:
    named_zip = (upload.filename or "").lower().endswith(".zip")
    return named_zip or upload.data[:4] in (b"PK\x03\x04", b"PK\x05\x06")


def _zip_mode(info: zipfile.ZipInfo) -> int | None:
    return info.external_attr >> 16 if info.create_system in _ZIP_UNIX_HOSTS else None


def _check_member(info: zipfile.ZipInfo, where: str) -> None:
    mode = _zip_mode(info)
    if mode is not None and stat.S_ISLNK(mode):
        raise _fail(where, "symbolic links are not allowed in a skill")
    if mode is not None and stat.S_IFMT(mode) not in (0, stat.S_IFREG, stat.S_IFDIR):
        raise _fail(where, "only regular files and directories are allowed in a skill")
    if info.flag_bits & 0x1:
        raise _fail(where, "encrypted archive members are not supported")


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, budget: int) -> bytes:
    # The declared size may lie: read at most one byte past what is still allowed.
    with archive.open(info) as member:
        return member.read(budget + 1)


def _zip_entries(upload: UploadedFile, limits: Limits) -> list[_Entry]:
    where = f"files[0] {upload.filename!r}"
    try:
        archive = zipfile.ZipFile(io.BytesIO(upload.data))
    except (zipfile.BadZipFile, OSError) as exc:
        raise _fail(where, f"not a readable zip archive ({exc})") from None
    entries: list[_Entry] = []
    total = 0
    with archive:
        for info in archive.infolist():
            member = f"{where} member {info.filename!r}"
            _check_member(info, member)
            if info.is_dir():
                continue
            if len(entries) >= limits.max_files:
                raise _fail("files", f"the archive holds more than {limits.max_files} files")
            try:
                data = _read_member(archive, info, limits.max_bytes - total)
            except (zipfile.BadZipFile, NotImplementedError, RuntimeError, OSError, EOFError) as exc:
                raise _fail(member, f"cannot be read ({exc})") from None
            total += len(data)
            if total > limits.max_bytes:
                raise _too_large(total, limits)
            mode = _zip_mode(info)
            executable = bool(mode & 0o111) if mode is not None else data.startswith(b"#!")
            entries.append(_Entry(member, info.filename, data, executable))
    return entries


# --- plain uploads ------------------------------------------------------------------------------


def _part_entries(uploads: Sequence[UploadedFile], limits: Limits) -> list[_Entry]:
    if len(uploads) > limits.max_files:
        raise _fail("files", f"{len(uploads)} files; a skill may hold at most {limits.max_files}")
    total = sum(len(u.data) for u in uploads)
    if total > limits.max_bytes:
        raise _too_large(total, limits)
    entries = []
    for i, upload in enumerate(uploads):
        if not upload.filename:
            raise _fail(
                f"files[{i}]", "a file has no filename; send each file with its path, e.g. my-skill/SKILL.md"
            )
        where = f"files[{i}] {upload.filename!r}"
        entries.append(_Entry(where, upload.filename, upload.data, upload.data.startswith(b"#!")))
    return entries


# --- paths and layout ---------------------------------------------------------------------------


def _segments(entry: _Entry) -> tuple[str, ...]:
    name = entry.name
    if any(unicodedata.category(c) == "Cc" for c in name):
        raise _fail(entry.where, "the path contains control characters")
    if "\\" in name:
        raise _fail(entry.where, "use '/' to separate directories")
    if name.startswith("/"):
        raise _fail(entry.where, "absolute paths are not allowed; give the path inside the skill")
    if len(name.encode()) > MAX_PATH_BYTES:
        raise _fail(entry.where, f"the path is longer than {MAX_PATH_BYTES} bytes")
    parts = tuple(name.split("/"))
    if any(p in ("", ".", "..") for p in parts):
        raise _fail(entry.where, "empty, '.' and '..' path segments are not allowed")
    if any(len(p.encode()) > MAX_SEGMENT_BYTES for p in parts):
        raise _fail(entry.where, f"a file or directory name is longer than {MAX_SEGMENT_BYTES} bytes")
    return parts


def _check_unique(paths: dict[tuple[str, ...], _Entry]) -> None:
    for parts, entry in paths.items():
        for depth in range(1, len(parts)):
            if parts[:depth] in paths:
                raise _fail(entry.where, f"{'/'.join(parts[:depth])!r} is both a file and a directory")


def _index(entries: Iterable[_Entry]) -> dict[tuple[str, ...], _Entry]:
    paths: dict[tuple[str, ...], _Entry] = {}
    for entry in entries:
        parts = _segments(entry)
        if parts in paths:
            raise _fail(entry.where, "the same path is uploaded twice")
        paths[parts] = entry
    _check_unique(paths)
    return paths


def _skill_root(paths: dict[tuple[str, ...], _Entry]) -> tuple[str, ...]:
    """The directory the skill's files live in: ``()`` when SKILL.md is at the root."""
    if (SKILL_FILE,) in paths:
        return ()
    tops = sorted({parts[0] for parts in paths})
    if len(tops) == 1 and all(len(parts) > 1 for parts in paths):
        if (tops[0], SKILL_FILE) not in paths:
            found = [("/".join(p)) for p in paths if p[-1].lower() == SKILL_FILE.lower()]
            hint = f" (found {', '.join(found)})" if found else ""
            raise _fail("files", f"{SKILL_FILE} is missing at the root of {tops[0]}/{hint}")
        return (tops[0],)
    listing = ", ".join(t + ("/" if any(len(p) > 1 and p[0] == t for p in paths) else "") for t in tops[:5])
    raise _fail(
        "files",
        f"all files must be in one top-level directory with {SKILL_FILE} at its root (found {listing})",
    )


def read_bundle(uploads: Sequence[UploadedFile], limits: Limits) -> SkillBundle:
    """Check an upload and return the skill's files relative to its directory."""
    if not uploads:
        raise _fail("files", f"upload the skill's files ({SKILL_FILE} and what it uses) as files[] parts")
    zipped = len(uploads) == 1 and _is_zip(uploads[0])
    entries = _zip_entries(uploads[0], limits) if zipped else _part_entries(uploads, limits)
    if not entries:
        raise _fail("files", "the archive holds no files")
    paths = _index(entries)
    root = _skill_root(paths)
    files = tuple(
        BundleFile(path="/".join(parts[len(root) :]), data=entry.data, executable=entry.executable)
        for parts, entry in sorted(paths.items())
    )
    header = parse_header(paths[(*root, SKILL_FILE)].data)
    return SkillBundle(header=header, files=files)
