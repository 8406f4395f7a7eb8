"""/v1/files: uploads streamed to disk, metadata, pages, downloads, deletes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse

from app.api.deps import BlobsDep, ReadSession, SettingsDep, WriteSession
from app.api.query import array_param
from app.api.uploads import stream_file_upload
from app.files import service
from app.files.schemas import FileDeleted, FileMetadata, FilePage
from app.shared.uploads import StreamedUpload
from app.storage.blobs import BlobBackend

router = APIRouter(prefix="/files", tags=["files"])


async def _streamed(request: Request, settings: SettingsDep, blobs: BlobsDep) -> StreamedUpload:
    staging = blobs.stage()
    try:
        return await stream_file_upload(request, staging, field="file", max_bytes=settings.files_max_bytes)
    except BaseException:
        await staging.discard()
        raise


# Declared before the database session: the body streams to disk before the transaction starts.
Upload = Annotated[StreamedUpload, Depends(_streamed)]


@router.post("", response_model=FileMetadata)
async def upload_file(
    upload: Upload, db: WriteSession, blobs: BlobsDep, settings: SettingsDep
) -> FileMetadata:
    """Upload a file (multipart part `file`, optional `expires_in_seconds`)."""
    rules = service.UploadRules(settings.files_quota_bytes, settings.files_uploads_downloadable)
    return await service.upload(db, blobs, rules, upload)


@router.get("", response_model=FilePage)
async def list_files(
    db: ReadSession,
    ids: Annotated[list[str] | None, Depends(array_param("ids"))],
    limit: Annotated[int | None, Query(ge=1, le=1000)] = None,
    page: str | None = None,
    after_id: str | None = None,
    before_id: str | None = None,
    scope_id: str | None = None,
) -> FilePage:
    """List files, newest first (`scope_id=<session id>` for a session's files)."""
    return await service.list_files(
        db, limit=limit, page=page, after_id=after_id, before_id=before_id, scope_id=scope_id, ids=ids
    )


@router.get("/{file_id}", response_model=FileMetadata)
async def retrieve_file(file_id: str, db: ReadSession) -> FileMetadata:
    """Retrieve a file's metadata."""
    return await service.get(db, file_id)


def _chunks(blobs: BlobBackend, sha256: str) -> Iterator[bytes]:
    yield from blobs.read_chunks(sha256)


@router.get("/{file_id}/content", response_class=StreamingResponse)
async def download_file(file_id: str, db: ReadSession, blobs: BlobsDep) -> StreamingResponse:
    """Download a file's bytes (session outputs; uploads are not downloadable)."""
    found = await service.download(db, file_id)
    disposition = f"attachment; filename*=UTF-8''{quote(found.filename)}"
    return StreamingResponse(
        _chunks(blobs, found.sha256),
        media_type=found.mime_type,
        headers={"content-length": str(found.size_bytes), "content-disposition": disposition},
    )


@router.delete("/{file_id}", response_model=FileDeleted)
async def delete_file(file_id: str, db: WriteSession) -> FileDeleted:
    """Delete a file."""
    return await service.delete(db, file_id)
