"""Multipart uploads read with a hard cap, handed to services as plain ``UploadedForm`` data.

The body is counted while it streams, so an oversized upload is refused with a 413 as soon as it
passes the cap (a declared ``Content-Length`` over it is refused before reading anything).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator

from fastapi import Request
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from app.errors import InvalidRequest, RequestTooLarge
from app.shared.uploads import UploadedFile, UploadedForm

# Room for part headers and boundaries on top of the content a resource allows.
_OVERHEAD_BYTES = 1024 * 1024
_MAX_FIELD_BYTES = 64 * 1024


def _too_large(limit: int) -> RequestTooLarge:
    return RequestTooLarge(f"the upload is larger than {limit:,} bytes")


async def _capped(request: Request, limit: int) -> AsyncGenerator[bytes, None]:
    received = 0
    async for chunk in request.stream():
        received += len(chunk)
        if received > limit:
            raise _too_large(limit)
        yield chunk


def _declared_length(request: Request) -> int | None:
    try:
        return int(request.headers["content-length"])
    except (KeyError, ValueError):
        return None


async def read_multipart(request: Request, *, max_content_bytes: int, max_files: int) -> UploadedForm:
    """The file parts and text fields of a ``multipart/form-data`` body."""
    if not request.headers.get("content-type", "").lower().startswith("multipart/form-data"):
        raise InvalidRequest("expected a multipart/form-data body with the files as files[] parts")
    limit = max_content_bytes + _OVERHEAD_BYTES
    declared = _declared_length(request)
    if declared is not None and declared > limit:
        raise _too_large(limit)
    parser = MultiPartParser(
        request.headers,
        _capped(request, limit),
        max_files=max_files,
        max_fields=100,
        max_part_size=_MAX_FIELD_BYTES,
    )
    try:
        form = await parser.parse()
    except MultiPartException as exc:
        raise InvalidRequest(f"multipart body: {exc.message}") from None
    files: list[UploadedFile] = []
    fields: dict[str, str] = {}
    try:
        for name, value in form.multi_items():
            if isinstance(value, UploadFile):
                files.append(UploadedFile(field=name, filename=value.filename, data=await value.read()))
            else:
                fields[name] = value
    finally:
        await form.close()
    return UploadedForm(files=tuple(files), fields=fields)
