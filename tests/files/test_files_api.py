"""The Files API through the strict SDK: uploads streamed to disk, metadata, pages, downloads,
deletes, and every bad upload a clear 4xx in the error envelope."""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Iterator
from pathlib import Path

import anthropic
import httpx
import pytest

from app.config import Settings
from tests.conftest import make_settings
from tests.support.clients import API_KEY, strict_client
from tests.support.server import ServerThread


@pytest.fixture(scope="module")
def files_server(database_url: str) -> Iterator[ServerThread]:
    """Uploads downloadable (to check round trips), a small size limit and quota, no auto sweep."""
    settings = make_settings(
        database_url,
        files_uploads_downloadable=True,
        files_max_bytes=40 * 1024 * 1024,
        storage_sweep_seconds=0,
    )
    server = ServerThread(settings).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def files_client(files_server: ServerThread) -> Iterator[anthropic.Anthropic]:
    with strict_client(files_server.url, API_KEY) as sdk:
        yield sdk


def _blob_path(settings: Settings, data: bytes) -> Path:
    digest = hashlib.sha256(data).hexdigest()
    return settings.storage_dir.resolve() / "blobs" / digest[:2] / digest[2:4] / digest


def test_upload_returns_the_documented_metadata(client: anthropic.Anthropic) -> None:
    uploaded = client.beta.files.upload(file=("dir/sub/report.csv", b"a,b\n1,2\n", "text/csv"))
    assert uploaded.id.startswith("file_") and uploaded.type == "file"
    assert (uploaded.filename, uploaded.mime_type, uploaded.size_bytes) == ("report.csv", "text/csv", 8)
    assert uploaded.downloadable is False and uploaded.scope is None and uploaded.expires_at is None
    assert client.beta.files.retrieve_metadata(uploaded.id) == uploaded


def test_an_upload_is_not_downloadable_by_default(client: anthropic.Anthropic) -> None:
    uploaded = client.beta.files.upload(file=("in.txt", b"input", "text/plain"))
    with pytest.raises(anthropic.BadRequestError) as caught:
        client.beta.files.download(uploaded.id)
    assert "not downloadable" in caught.value.message
    assert caught.value.body["error"]["details"]["error_code"] == "file_not_downloadable"  # type: ignore[index]


def test_a_nameless_upload_is_unnamed_with_the_types_extension(client: anthropic.Anthropic) -> None:
    uploaded = client.beta.files.upload(file=io.BytesIO(b"plain words"))
    assert uploaded.filename == "unnamed.bin" and uploaded.mime_type == "application/octet-stream"
    typed = client.beta.files.upload(file=("", b"plain words", "text/plain"))
    assert typed.filename == "unnamed.txt" and typed.mime_type == "text/plain"


def test_expiry_is_upload_time_plus_the_seconds(client: anthropic.Anthropic) -> None:
    uploaded = client.beta.files.upload(file=("e.txt", b"soon gone", "text/plain"), expires_in_seconds=3600)
    assert uploaded.expires_at is not None
    assert (uploaded.expires_at - uploaded.created_at).total_seconds() == pytest.approx(3600, abs=1)


def test_binary_and_large_files_round_trip_byte_exact(
    files_client: anthropic.Anthropic, files_server: ServerThread
) -> None:
    for data in (bytes(range(256)) * 3, os.urandom(30 * 1024 * 1024 + 7)):
        uploaded = files_client.beta.files.upload(file=("blob.bin", data, "application/octet-stream"))
        assert uploaded.size_bytes == len(data) and uploaded.downloadable is True
        assert files_client.beta.files.download(uploaded.id).read() == data
        assert _blob_path(files_server.settings, data).read_bytes() == data
    # Nothing is left half-written in the staging area.
    assert list((files_server.settings.storage_dir / "tmp").iterdir()) == []


def test_same_bytes_are_stored_once_and_go_with_the_last_file(
    files_client: anthropic.Anthropic, files_server: ServerThread
) -> None:
    data = os.urandom(4096)
    first = files_client.beta.files.upload(file=("a.bin", data))
    second = files_client.beta.files.upload(file=("b.bin", data))
    blob = _blob_path(files_server.settings, data)
    assert files_client.beta.files.delete(first.id).id == first.id
    _sweep(files_server)
    assert blob.exists() and files_client.beta.files.download(second.id).read() == data
    files_client.beta.files.delete(second.id)
    _sweep(files_server)
    assert not blob.exists()
    with pytest.raises(anthropic.NotFoundError):
        files_client.beta.files.retrieve_metadata(second.id)
    with pytest.raises(anthropic.NotFoundError):
        files_client.beta.files.download(second.id)


def _sweep(server: ServerThread) -> None:
    import asyncio

    from app.db.engine import Database
    from app.files.sweeper import StorageSweeper
    from app.storage.blobs import LocalDiskBackend

    async def run() -> None:
        database = Database(server.settings.database_url)
        try:
            await StorageSweeper(database, LocalDiskBackend(server.settings.storage_dir), 0).sweep_once()
        finally:
            await database.dispose()

    asyncio.run(run())


def test_list_pages_newest_first_both_ways(client: anthropic.Anthropic, http: httpx.Client) -> None:
    ids = [client.beta.files.upload(file=(f"p{i}.txt", b"x%d" % i, "text/plain")).id for i in range(5)]
    newest_first = list(reversed(ids))
    listed = client.beta.files.list(ids=ids)
    assert [f.id for f in listed.data] == newest_first and listed.next_page is None
    first = client.beta.files.list(limit=2)
    assert [f.id for f in first.data] == newest_first[:2] and first.next_page
    second = client.beta.files.list(limit=2, page=first.next_page)
    assert [f.id for f in second.data] == newest_first[2:4]
    # The 0.x SDK's after_id/before_id scheme on the same list.
    older = http.get("/v1/files", params={"after_id": ids[3], "limit": 2}).json()
    assert [f["id"] for f in older["data"]] == [ids[2], ids[1]] and older["has_more"] is True
    newer = http.get("/v1/files", params={"before_id": ids[1], "limit": 2}).json()
    assert [f["id"] for f in newer["data"]] == [ids[3], ids[2]] and newer["has_more"] is True
    assert (newer["first_id"], newer["last_id"]) == (ids[3], ids[2])


def test_scope_id_lists_only_that_sessions_files(client: anthropic.Anthropic) -> None:
    client.beta.files.upload(file=("unscoped.txt", b"u", "text/plain"))
    assert client.beta.files.list(scope_id="sesn_nothing_here").data == []


BAD_UPLOADS = [
    ("empty file", {"file": ("e.txt", b"", "text/plain")}, {}, 400, "the file is empty"),
    ("bad mime", {"file": ("e.txt", b"x", "not a type")}, {}, 400, "is not a MIME type"),
    ("no file part", {"other": ("e.txt", b"x", "text/plain")}, {}, 400, "has no `file` part"),
    (
        "expiry too short",
        {"file": ("e.txt", b"x", "text/plain")},
        {"expires_in_seconds": "60"},
        400,
        "between 3600",
    ),
    (
        "expiry not a number",
        {"file": ("e.txt", b"x", "text/plain")},
        {"expires_in_seconds": "x"},
        400,
        "integer",
    ),
    ("two file parts", [("file", ("a", b"x")), ("file", ("b", b"y"))], {}, 400, "one `file` part"),
]


@pytest.mark.parametrize(
    ("case", "files", "data", "status", "message"), BAD_UPLOADS, ids=[c[0] for c in BAD_UPLOADS]
)
def test_bad_uploads_are_clear_4xx(
    http: httpx.Client, case: str, files: object, data: dict[str, str], status: int, message: str
) -> None:
    response = http.post("/v1/files", files=files, data=data)  # type: ignore[arg-type]
    assert response.status_code == status, response.text
    body = response.json()
    assert body["type"] == "error" and message in body["error"]["message"]


def test_a_body_that_is_not_multipart_is_a_400(http: httpx.Client) -> None:
    response = http.post("/v1/files", json={"file": "x"})
    assert response.status_code == 400 and "multipart/form-data" in response.json()["error"]["message"]


def test_an_oversized_upload_is_a_413_while_streaming(
    files_server: ServerThread, files_client: anthropic.Anthropic
) -> None:
    size = files_server.settings.files_max_bytes + 1

    def body() -> Iterator[bytes]:  # chunked: no Content-Length to refuse up front
        yield b'--b\r\ncontent-disposition: form-data; name="file"; filename="big"\r\n\r\n'
        chunk = b"\0" * (1024 * 1024)
        for _ in range(size // len(chunk) + 1):
            yield chunk
        yield b"\r\n--b--\r\n"

    headers = {"x-api-key": API_KEY, "content-type": "multipart/form-data; boundary=b"}
    with httpx.Client(base_url=files_server.url, timeout=120) as http:
        response = http.post("/v1/files", content=body(), headers=headers)
    assert response.status_code == 413 and response.json()["error"]["type"] == "request_too_large"
    assert list((files_server.settings.storage_dir / "tmp").iterdir()) == []
    with pytest.raises(anthropic.APIStatusError) as caught:
        files_client.beta.files.upload(file=("big.bin", b"\0" * size))
    assert caught.value.status_code == 413


def _uploaded_bytes(database_url: str) -> int:
    import asyncio

    from app.db.engine import Database
    from app.files import repository

    async def run() -> int:
        database = Database(database_url)
        try:
            async with database.read() as db:
                return await repository.uploaded_bytes(db)
        finally:
            await database.dispose()

    return asyncio.run(run())


def test_over_quota_is_storage_quota_exceeded(database_url: str) -> None:
    quota = _uploaded_bytes(database_url) + 10**6
    server = ServerThread(make_settings(database_url, files_quota_bytes=quota)).start()
    try:
        with strict_client(server.url, API_KEY) as sdk:
            kept = sdk.beta.files.upload(file=("a.bin", b"\1" * 600_000))
            with pytest.raises(anthropic.BadRequestError) as caught:
                sdk.beta.files.upload(file=("b.bin", b"\2" * 600_000))
            assert caught.value.body["error"]["details"]["error_code"] == "storage_quota_exceeded"  # type: ignore[index]
            sdk.beta.files.delete(kept.id)
    finally:
        server.stop()


def test_unknown_ids_are_404(client: anthropic.Anthropic) -> None:
    for call in (client.beta.files.retrieve_metadata, client.beta.files.delete, client.beta.files.download):
        with pytest.raises(anthropic.NotFoundError):
            call("file_nope")
