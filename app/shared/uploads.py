"""What the HTTP layer hands services from a multipart upload: plain data, no framework types."""

from __future__ import annotations

from dataclasses import dataclass


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
