"""The streamed multipart reader on its own: the file part's bytes reach the store exactly as
sent, however the body is cut into received chunks (a boundary split across chunks, content
that looks like the start of a boundary), and the text fields are kept."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from starlette.requests import Request
from starlette.types import Message

from app.api.uploads import stream_file_upload
from app.storage.blobs import LocalDiskBackend

_BOUNDARY = "mas-test-boundary-0123"


def _body(content: bytes) -> bytes:
    return (
        f"--{_BOUNDARY}\r\ncontent-disposition: form-data; name=\"expires_in_seconds\"\r\n\r\n3600\r\n"
        f"--{_BOUNDARY}\r\ncontent-disposition: form-data; name=\"file\"; filename=\"x.bin\"\r\n"
        "content-type: application/octet-stream\r\n\r\n"
    ).encode() + content + f"\r\n--{_BOUNDARY}--\r\n".encode()


def _request(body: bytes, chunk: int) -> Request:
    pieces = [body[i : i + chunk] for i in range(0, len(body), chunk)]
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/v1/files",
        "headers": [(b"content-type", f"multipart/form-data; boundary={_BOUNDARY}".encode())],
    }

    async def receive() -> Message:
        piece = pieces.pop(0)
        return {"type": "http.request", "body": piece, "more_body": bool(pieces)}

    return Request(scope, receive)


# Content with CRLFs, a partial delimiter and the whole boundary text without its CRLF: the parser
# holds such bytes back until the next chunk shows they are content.
_TRICKY = b"\r\n--mas-test-bound" + b"\r\n-" + b"--" + _BOUNDARY.encode() + b"x" + b"\r\n\r\n--"


@pytest.mark.parametrize("chunk", [1, 7, 64, 65_536, 1024 * 1024])
async def test_the_file_part_is_stored_byte_exact_however_the_body_is_cut(tmp_path: Path, chunk: int) -> None:
    middle = os.urandom(20_000 if chunk < 1024 else 5_000_000)
    content = _TRICKY + middle + _TRICKY + os.urandom(4097) + _TRICKY
    blobs = LocalDiskBackend(tmp_path)
    staging = blobs.stage()
    upload = await stream_file_upload(_request(_body(content), chunk), staging, field="file", max_bytes=10**9)
    assert upload.staged.path.read_bytes() == content
    assert (upload.staged.sha256, upload.staged.size) == (hashlib.sha256(content).hexdigest(), len(content))
    assert (upload.filename, upload.content_type, upload.fields) == (
        "x.bin",
        "application/octet-stream",
        {"expires_in_seconds": "3600"},
    )
    blobs.discard(upload.staged)
