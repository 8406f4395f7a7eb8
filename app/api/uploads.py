"""Multipart uploads read with a hard cap, handed to services as plain ``UploadedForm`` data.

The body is counted while it streams, so an oversized upload is refused with a 413 as soon as it
passes the cap (a declared ``Content-Length`` over it is refused before reading anything).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable
from typing import Any, cast

from fastapi import Request
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from app.errors import InvalidRequest, RequestTooLarge
from app.shared.uploads import StreamedUpload, UploadedFile, UploadedForm
from app.storage.blobs import Staging

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


class _OnePart:
    """Callbacks of python-multipart's push parser: headers of each part, the named file part's
    bytes collected per pushed chunk (written out between chunks), small text fields kept."""

    def __init__(self, file_field: str) -> None:
        self.file_field = file_field
        self.pending: list[bytes | memoryview] = []
        self.fields: dict[str, str] = {}
        self.filename: str | None = None
        self.content_type: str | None = None
        self.file_parts = 0
        self._headers: dict[str, str] = {}
        self._name = self._value = b""
        self._part: str | None = None
        self._field = bytearray()

    def callbacks(self) -> dict[str, Callable[..., None]]:
        return {
            "on_part_begin": self._begin,
            "on_header_field": lambda d, s, e: setattr(self, "_name", self._name + d[s:e]),
            "on_header_value": lambda d, s, e: setattr(self, "_value", self._value + d[s:e]),
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": self._data,
            "on_part_end": self._end,
        }

    def _begin(self) -> None:
        self._headers, self._part, self._field = {}, None, bytearray()

    def _header_end(self) -> None:
        self._headers[self._name.decode("latin-1").lower()] = self._value.decode("utf-8", "replace")
        self._name = self._value = b""

    def _headers_finished(self) -> None:
        _, options = parse_options_header(self._headers.get("content-disposition", ""))
        name = options.get(b"name", b"").decode("utf-8", "replace")
        if name == self.file_field:
            self.file_parts += 1
            if self.file_parts > 1:
                raise InvalidRequest(f"send one `{self.file_field}` part per upload")
            raw = options.get(b"filename")
            self.filename = raw.decode("utf-8", "replace") if raw is not None else None
            self.content_type = self._headers.get("content-type")
            self._part = "file"
        else:
            self._part = name

    def _data(self, data: bytes, start: int, end: int) -> None:
        if self._part == "file":
            # A view of the received chunk (immutable bytes), not a copy of most of it; anything
            # else the parser hands over (a buffer of its own) is copied.
            piece = memoryview(data)[start:end] if type(data) is bytes else bytes(data[start:end])
            self.pending.append(piece)
        elif self._part is not None:
            self._field += data[start:end]
            if len(self._field) > _MAX_FIELD_BYTES:
                raise InvalidRequest(f"multipart field {self._part!r} is too large")

    def _end(self) -> None:
        if self._part not in (None, "file"):
            self.fields[self._part] = self._field.decode("utf-8", "replace")


async def stream_file_upload(
    request: Request, staging: Staging, *, field: str, max_bytes: int
) -> StreamedUpload:
    """Stream the ``field`` file part of a multipart body into ``staging`` as it arrives (never
    held in memory): 413 as soon as the file passes ``max_bytes``. The caller owns ``staging``
    (discards it on error)."""
    content_type, options = parse_options_header(request.headers.get("content-type", ""))
    boundary = options.get(b"boundary")
    if content_type != b"multipart/form-data" or not boundary:
        raise InvalidRequest(f"expected a multipart/form-data body with the file as the `{field}` part")
    declared = _declared_length(request)
    if declared is not None and declared > max_bytes + _OVERHEAD_BYTES:
        raise _too_large(max_bytes)
    parts = _OnePart(field)
    parser = MultipartParser(boundary, cast(Any, parts.callbacks()))
    async for chunk in request.stream():
        try:
            parser.write(chunk)
        except MultipartParseError as exc:
            raise InvalidRequest(f"multipart body: {exc}") from None
        for data in parts.pending:
            await staging.write(data)
        parts.pending.clear()
        if staging.size > max_bytes:
            raise _too_large(max_bytes)
    try:
        parser.finalize()
    except MultipartParseError as exc:
        raise InvalidRequest(f"multipart body: {exc}") from None
    if parts.file_parts == 0:
        raise InvalidRequest(f"the multipart body has no `{field}` part")
    staged = await staging.finish()
    return StreamedUpload(staged, parts.filename, parts.content_type, parts.fields)
