"""Files API shapes (``BetaFileMetadata``, ``BetaDeletedFile``)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel


class FileScope(BaseModel):
    type: Literal["session"] = "session"
    id: str


class FileMetadata(BaseModel):
    type: Literal["file"] = "file"
    id: str
    filename: str
    mime_type: str
    size_bytes: int
    created_at: datetime
    downloadable: bool
    expires_at: datetime | None = None
    scope: FileScope | None = None


class FilePage(BaseModel):
    """Both SDK generations' page shapes: ``next_page`` (cursor) and ``has_more/first_id/last_id``."""

    data: list[FileMetadata]
    next_page: str | None
    has_more: bool
    first_id: str | None
    last_id: str | None


class FileDeleted(BaseModel):
    id: str
    type: Literal["file_deleted"] = "file_deleted"
