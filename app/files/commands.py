"""`mas files upload|list|download`: a client of a running server's /v1/files, with progress bars
for large files (streamed both ways: a 500 MB file is never held in memory)."""

from __future__ import annotations

import mimetypes
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, BinaryIO, NotRequired, TypedDict

import httpx
import typer

from app.cli_client import Key, Url, checked
from app.cli_client import api_client as _client
from app.cli_output import Json, emit

files_cli = typer.Typer(help="Upload, list and download files of a running mas server.", no_args_is_help=True)


class _Progress:
    """A file object whose reads advance a progress bar (httpx reads uploads in chunks)."""

    def __init__(self, handle: BinaryIO, bar: Any) -> None:
        self.handle = handle
        self.bar = bar

    def read(self, size: int = -1) -> bytes:
        data = self.handle.read(size)
        self.bar.update(len(data))
        return data


@files_cli.command("upload")
def upload(
    path: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    url: Url = None,
    api_key: Key = None,
    expires_in_seconds: Annotated[int | None, typer.Option(help="3600-7776000")] = None,
) -> None:
    """Upload a file; prints its id."""
    mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    data = {"expires_in_seconds": str(expires_in_seconds)} if expires_in_seconds else {}
    size = path.stat().st_size
    with (
        _client(url, api_key) as client,
        path.open("rb") as handle,
        typer.progressbar(length=size, label=f"uploading {path.name}") as bar,
    ):
        files = {"file": (path.name, _Progress(handle, bar), mime)}
        body = checked(client.post("/v1/files", files=files, data=data))  # type: ignore[arg-type]
    typer.echo(f"{body['id']}  {body['size_bytes']} bytes  {body['mime_type']}  {body['filename']}")


@files_cli.command("list")
def list_files(
    url: Url = None,
    api_key: Key = None,
    scope_id: Annotated[str | None, typer.Option(help="Only a session's files (its id).")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="Page size (every page is listed).")] = 100,
    as_json: Json = False,
) -> None:
    """List files, newest first."""
    params: dict[str, str | int] = {"limit": limit}
    if scope_id:
        params["scope_id"] = scope_id
    with _client(url, api_key) as client:
        items = _pages(client, params)
        emit(items, as_json, _file_line)


class _ListedFile(TypedDict):
    """What a listing line shows of a file (the server's JSON holds more, printed by --json)."""

    id: str
    filename: str
    size_bytes: int
    downloadable: NotRequired[bool]


def _file_line(item: _ListedFile) -> str:
    flag = "downloadable" if item.get("downloadable") else "-"
    return f"{item['id']}  {item['size_bytes']:>12}  {flag:<12}  {item['filename']}"


def _pages(client: httpx.Client, params: dict[str, str | int]) -> Iterator[_ListedFile]:
    while True:
        body = checked(client.get("/v1/files", params=params))
        yield from body["data"]
        if not body.get("next_page"):
            return
        params = {**params, "page": body["next_page"]}


@files_cli.command("download")
def download(
    file_id: str,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Where to write (default: its filename).")
    ] = None,
    url: Url = None,
    api_key: Key = None,
) -> None:
    """Download a file's content."""
    with _client(url, api_key) as client:
        meta = checked(client.get(f"/v1/files/{file_id}"))
        target = output or Path(Path(meta["filename"]).name)
        with client.stream("GET", f"/v1/files/{file_id}/content") as response:
            if response.status_code >= 400:
                response.read()
                checked(response)
            partial = target.with_name(target.name + ".part")
            with (
                partial.open("wb") as handle,
                typer.progressbar(length=meta["size_bytes"], label=f"downloading {target.name}") as bar,
            ):
                for chunk in response.iter_bytes(1024 * 1024):
                    handle.write(chunk)
                    bar.update(len(chunk))
            partial.replace(target)
    typer.echo(f"{target}  {meta['size_bytes']} bytes")
