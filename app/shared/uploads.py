"""What the HTTP layer hands services from a multipart upload: plain data, no framework types."""

from __future__ import annotations

from dataclasses import dataclass

from app.storage.blobs import Staged


@dataclass(frozen=True)
class UploadedFile:
    """One file part: its form field, its filename as the client sent it (directories included),
    and its bytes."""

    field: str
    filename: str | None
    data: bytes


@dataclass(frozen=True)
class UploadedForm:
    files: tuple[UploadedFile, ...]
    fields: dict[str, str]


@dataclass(frozen=True)
class StreamedUpload:
    """A file part streamed into the content store's staging area, and the form's text fields."""

    staged: Staged
    filename: str | None
    content_type: str | None
    fields: dict[str, str]
