"""Files: uploads, metadata, pages, downloads and deletes; session copies and outputs.

A file's bytes are a reference in the content store (``app/storage``): a session's copy of an
upload shares the upload's bytes under its own id, and the bytes go with their last holder.
"""

from __future__ import annotations

import mimetypes
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from app.db.base import utcnow
from app.db.engine import Database
from app.db.models import StoredFile
from app.errors import InvalidRequest, NotFound
from app.files import repository
from app.files.schemas import FileDeleted, FileMetadata, FilePage, FileScope
from app.ids import new_id
from app.shared.pagination import Cursor, decode_cursor, decode_time_key, encode_cursor, time_key
from app.shared.uploads import StreamedUpload
from app.storage import service as storage
from app.storage.blobs import BlobBackend, Staged

MIN_EXPIRES_SECONDS = 3600
MAX_EXPIRES_SECONDS = 7_776_000
MAX_IDS = 100
_MIME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}$")
_MAX_FILENAME = 255


@dataclass(frozen=True)
class UploadRules:
    quota_bytes: int
    uploads_downloadable: bool


@dataclass(frozen=True)
class Download:
    sha256: str
    filename: str
    mime_type: str
    size_bytes: int


def to_schema(row: StoredFile) -> FileMetadata:
    scope = FileScope(id=row.scope_session_id) if row.scope_session_id else None
    return FileMetadata(
        id=row.id,
        filename=row.filename,
        mime_type=row.mime_type,
        size_bytes=row.size_bytes,
        created_at=row.created_at,
        downloadable=row.downloadable,
        expires_at=row.expires_at,
        scope=scope,
    )


def _mime_type(content_type: str | None, filename: str | None) -> str:
    raw = (content_type or "").split(";", 1)[0].strip().lower()
    if raw and not _MIME.match(raw):
        raise InvalidRequest(f"the file part's Content-Type {content_type!r} is not a MIME type")
    if raw and raw != "application/octet-stream":
        return raw
    guessed = mimetypes.guess_type(filename or "")[0]
    return guessed or "application/octet-stream"


def _filename(raw: str | None, mime_type: str) -> str:
    """Only the final path component is kept; absent or empty is ``unnamed`` + the type's extension."""
    name = re.split(r"[/\\]", raw or "")[-1].strip()
    if "\x00" in name or any(ord(c) < 32 for c in name):
        raise InvalidRequest("filename: control characters are not allowed")
    if len(name) > _MAX_FILENAME:
        raise InvalidRequest(f"filename: at most {_MAX_FILENAME} characters")
    if name in ("", ".", ".."):
        return "unnamed" + (mimetypes.guess_extension(mime_type) or "")
    return name


def _expires_at(fields: dict[str, str], now: datetime) -> datetime | None:
    raw = fields.get("expires_in_seconds")
    if raw is None or raw.strip() == "":
        return None
    try:
        seconds = int(raw.strip())
    except ValueError:
        raise InvalidRequest(f"expires_in_seconds: expected an integer, got {raw!r}") from None
    if not MIN_EXPIRES_SECONDS <= seconds <= MAX_EXPIRES_SECONDS:
        raise InvalidRequest(
            f"expires_in_seconds: must be between {MIN_EXPIRES_SECONDS} and {MAX_EXPIRES_SECONDS}"
        )
    return now + timedelta(seconds=seconds)


async def _check_quota(db: AsyncSession, size: int, quota: int) -> None:
    used = await repository.uploaded_bytes(db)
    if used + size > quota:
        raise InvalidRequest(
            f"storage quota exceeded: {used:,} of {quota:,} bytes in use, this file needs {size:,}",
            error_code="storage_quota_exceeded",
        )


async def upload(
    db: AsyncSession, blobs: BlobBackend, rules: UploadRules, upload: StreamedUpload
) -> FileMetadata:
    """Store a streamed upload as a new file (the staged bytes are placed or discarded)."""
    try:
        now = utcnow()
        mime_type = _mime_type(upload.content_type, upload.filename)
        filename = _filename(upload.filename, mime_type)
        expires_at = _expires_at(upload.fields, now)
        if upload.staged.size == 0:
            raise InvalidRequest("the file is empty")
        await _check_quota(db, upload.staged.size, rules.quota_bytes)
        ref = await storage.put_staged(db, blobs, upload.staged)
    finally:
        blobs.discard(upload.staged)
    row = StoredFile(
        id=new_id("file"),
        filename=filename,
        mime_type=mime_type,
        size_bytes=ref.size,
        sha256=ref.sha256,
        origin="upload",
        downloadable=rules.uploads_downloadable,
        scope_session_id=None,
        created_at=now,
        expires_at=expires_at,
    )
    repository.add(db, row)
    await db.flush()
    return to_schema(row)


async def _get_row(db: AsyncSession, file_id: str, *, lock: bool = False) -> StoredFile:
    row = await repository.get(db, file_id, lock=lock)
    if row is None:
        raise NotFound(f"file {file_id!r} not found")
    return row


async def get(db: AsyncSession, file_id: str) -> FileMetadata:
    return to_schema(await _get_row(db, file_id))


def _positions(
    page: str | None, after_id: str | None, before_id: str | None
) -> tuple[Cursor | None, str | None, str | None]:
    named = (("page", page), ("after_id", after_id), ("before_id", before_id))
    given = [name for name, value in named if value]
    if len(given) > 1:
        raise InvalidRequest(f"{' and '.join(given)} are mutually exclusive")
    return decode_cursor(page, "desc"), after_id or None, before_id or None


async def _anchor(db: AsyncSession, file_id: str, name: str) -> tuple[datetime, str]:
    row = await repository.get(db, file_id)
    if row is None:
        raise InvalidRequest(f"{name}: file {file_id!r} not found")
    return row.created_at, row.id


async def list_files(
    db: AsyncSession,
    *,
    limit: int | None,
    page: str | None,
    after_id: str | None,
    before_id: str | None,
    scope_id: str | None,
    ids: Sequence[str] | None,
) -> FilePage:
    """Newest first. ``page`` (2.x SDKs) or ``after_id``/``before_id`` (0.x SDKs) move along."""
    if ids is not None:
        return await _by_ids(db, ids, limit=limit, page=page, scope_id=scope_id)
    size = limit or 20
    cursor, after_id, before_id = _positions(page, after_id, before_id)
    older = decode_time_key(cursor) or (await _anchor(db, after_id, "after_id") if after_id else None)
    newer = await _anchor(db, before_id, "before_id") if before_id else None
    rows = await repository.page(db, limit=size + 1, scope_id=scope_id, older_than=older, newer_than=newer)
    has_more = len(rows) > size
    rows = rows[1:] if newer is not None and has_more else rows[:size]
    next_page = None
    if has_more and newer is None:
        next_page = encode_cursor(Cursor("desc", time_key(rows[-1].created_at, rows[-1].id)))
    return _page(rows, next_page, has_more)


async def _by_ids(
    db: AsyncSession, ids: Sequence[str], *, limit: int | None, page: str | None, scope_id: str | None
) -> FilePage:
    if limit is not None or page:
        raise InvalidRequest("ids is mutually exclusive with page and limit")
    unique = list(dict.fromkeys(ids))
    if len(unique) > MAX_IDS:
        raise InvalidRequest(f"ids: at most {MAX_IDS} ids")
    rows = await repository.get_many(db, unique)
    if scope_id is not None:
        rows = [row for row in rows if row.scope_session_id == scope_id]
    return _page(rows, None, False)


def _page(rows: Sequence[StoredFile], next_page: str | None, has_more: bool) -> FilePage:
    return FilePage(
        data=[to_schema(row) for row in rows],
        next_page=next_page,
        has_more=has_more,
        first_id=rows[0].id if rows else None,
        last_id=rows[-1].id if rows else None,
    )


async def download(db: AsyncSession, file_id: str) -> Download:
    """What to send for ``GET /v1/files/{id}/content`` (checked, not yet read)."""
    row = await _get_row(db, file_id)
    if not row.downloadable:
        raise InvalidRequest(
            f"file {file_id!r} is not downloadable (uploaded files are not; session outputs are)",
            error_code="file_not_downloadable",
        )
    if row.sha256 is None or (row.expires_at is not None and row.expires_at <= utcnow()):
        raise NotFound(f"file {file_id!r} has expired", error_code="file_expired")
    return Download(row.sha256, row.filename, row.mime_type, row.size_bytes)


async def _drop(db: AsyncSession, row: StoredFile) -> None:
    if row.sha256 is not None:
        await storage.release(db, row.sha256)
    await repository.remove(db, row.id)


async def delete(db: AsyncSession, file_id: str) -> FileDeleted:
    """Delete a file (its bytes go once no session copy shares them)."""
    row = await _get_row(db, file_id, lock=True)
    await _drop(db, row)
    return FileDeleted(id=file_id)


async def delete_session_files(db: AsyncSession, session_id: str) -> int:
    """Delete every file scoped to a session (its mounted copies and its outputs)."""
    rows = await repository.of_session(db, session_id)
    for row in rows:
        await _drop(db, row)
    return len(rows)


async def expire(database: Database, batch: int = 200) -> int:
    """Give back the bytes of files past ``expires_at`` (their metadata stays until deleted)."""
    async with database.unit_of_work() as db:
        rows = await repository.expired(db, utcnow(), batch)
        for row in rows:
            if row.sha256 is not None:
                await storage.release(db, row.sha256)
            await repository.forget_content(db, row.id)
    return len(rows)


async def add_staged(
    db: AsyncSession, blobs: BlobBackend, staged: Staged, *, filename: str, session_id: str
) -> FileMetadata:
    """A session output: downloadable, scoped to the session that wrote it."""
    try:
        ref = await storage.put_staged(db, blobs, staged)
    finally:
        blobs.discard(staged)
    row = StoredFile(
        id=new_id("file"),
        filename=filename,
        mime_type=_mime_type(None, filename),
        size_bytes=ref.size,
        sha256=ref.sha256,
        origin="output",
        downloadable=True,
        scope_session_id=session_id,
        created_at=utcnow(),
        expires_at=None,
    )
    repository.add(db, row)
    await db.flush()
    return to_schema(row)


async def session_copy(db: AsyncSession, file_id: str, session_id: str) -> FileMetadata:
    """A session's own read-only copy of an upload: a new file id scoped to the session, sharing
    the upload's bytes (not counted against the quota)."""
    source = await repository.get(db, file_id)
    if source is None:
        raise NotFound(f"file {file_id!r} not found")
    if source.sha256 is None or (source.expires_at is not None and source.expires_at <= utcnow()):
        raise InvalidRequest(f"file {file_id!r} has expired", error_code="file_expired")
    await storage.add_reference(db, source.sha256)
    row = StoredFile(
        id=new_id("file"),
        filename=source.filename,
        mime_type=source.mime_type,
        size_bytes=source.size_bytes,
        sha256=source.sha256,
        origin="session_copy",
        downloadable=False,
        scope_session_id=session_id,
        created_at=utcnow(),
        expires_at=None,
    )
    repository.add(db, row)
    await db.flush()
    return to_schema(row)


async def content_of(db: AsyncSession, file_ids: Sequence[str]) -> dict[str, str]:
    """The content digest of each file that still has its bytes."""
    if not file_ids:
        return {}
    return {row.id: row.sha256 for row in await repository.get_many(db, file_ids) if row.sha256}


async def delete_if_exists(db: AsyncSession, file_id: str) -> None:
    row = await repository.get(db, file_id, lock=True)
    if row is not None:
        await _drop(db, row)


async def output_digests(db: AsyncSession, session_id: str) -> list[tuple[str, str, int]]:
    """(path, content digest, size) of each output a session has kept, by path."""
    return await repository.output_digests(db, session_id)


async def output_sizes(db: AsyncSession, session_id: str) -> dict[str, int]:
    """The size of each output a session has kept, by its path."""
    return await repository.output_sizes(db, session_id)


async def record_output(
    db: AsyncSession, blobs: BlobBackend, staged: Staged, *, session_id: str, path: str
) -> bool:
    """Keep a session output (``path`` under /mnt/session/outputs). A path seen before keeps its
    file id and gets the new content; False when the content did not change."""
    row = await repository.output_of(db, session_id, path)
    if row is None:
        await add_staged(db, blobs, staged, filename=path, session_id=session_id)
        return True
    if row.sha256 == staged.sha256:
        blobs.discard(staged)
        return False
    try:
        ref = await storage.put_staged(db, blobs, staged)
    finally:
        blobs.discard(staged)
    if row.sha256 is not None:
        await storage.release(db, row.sha256)
    row.sha256, row.size_bytes = ref.sha256, ref.size
    await db.flush()
    return True
