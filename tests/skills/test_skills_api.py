"""/v1/skills and versions through the real SDK (strict), on each backend: create from a directory
as the SDK uploads it, versions and their addressing, downloads in the worker's archive format."""

from __future__ import annotations

import hashlib
import io
import os
import stat
import zipfile
from pathlib import Path

import anthropic
import pytest
from anthropic.lib import files_from_dir
from anthropic.lib.tools._skills import download_session_skills
from sqlalchemy import select

from app.db.engine import Database
from app.db.models import ContentBlob
from app.storage import service as storage
from app.storage.blobs import LocalDiskBackend
from tests.skills.factories import EXECUTABLE, REGULAR, make_skill, skill_files, skill_md, unique_name, zipped
from tests.support.factories import MODEL
from tests.support.server import ServerThread


def _skill_dir(tmp_path: Path, name: str) -> Path:
    root = tmp_path / name
    (root / "scripts").mkdir(parents=True)
    (root / "SKILL.md").write_bytes(skill_md(name, body="Run scripts/greet.sh NAME."))
    (root / "scripts" / "greet.sh").write_bytes(b'#!/bin/sh\necho "hello, $1"\n')
    (root / "reference.md").write_text("Greetings by language.\n")
    return root


def _archive(data: bytes) -> dict[str, tuple[bytes, int]]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {i.filename: (archive.read(i), i.external_attr >> 16) for i in archive.infolist()}


def test_create_from_a_directory_as_the_sdk_uploads_it(client: anthropic.Anthropic, tmp_path: Path) -> None:
    name = unique_name("greeting")
    skill = client.beta.skills.create(files=files_from_dir(_skill_dir(tmp_path, name)))

    version = client.beta.skills.versions.retrieve("latest", skill_id=skill.id)
    assert skill.id.startswith("skill_") and skill.type == "skill" and skill.source.type == "custom"
    assert skill.display_name == name  # from the frontmatter when omitted
    assert skill.latest_version_id == version.id and version.id.startswith("skill_version_")
    assert (version.skill_id, version.name, version.type) == (skill.id, name, "skill_version")
    assert version.description == "Greets people. Use when someone says hello."
    assert client.beta.skills.retrieve(skill.id) == skill
    assert [v.id for v in client.beta.skills.versions.list(skill.id)] == [version.id]


def test_versions_are_addressed_by_id_epoch_timestamp_or_latest(client: anthropic.Anthropic) -> None:
    name = unique_name()
    skill = make_skill(client, name, display_name="Greeter")
    second = client.beta.skills.versions.create(skill.id, files=skill_files(name, {"reference.md": b"v2"}))

    first = client.beta.skills.versions.retrieve(skill.latest_version_id, skill_id=skill.id)
    epoch = str(first.model_dump()["version"])
    assert epoch.isdigit() and len(epoch) == 16
    assert client.beta.skills.versions.retrieve(epoch, skill_id=skill.id) == first
    assert client.beta.skills.versions.retrieve("latest", skill_id=skill.id) == second
    assert int(second.model_dump()["version"]) > int(epoch)
    assert client.beta.skills.retrieve(skill.id).latest_version_id == second.id
    assert client.beta.skills.retrieve(skill.id).display_name == "Greeter"
    listed = client.beta.skills.versions.list(skill.id, limit=1)
    assert [v.id for v in listed.data] == [second.id] and listed.next_page
    assert [page.data[0].id for page in listed.iter_pages()] == [second.id, first.id]


def test_download_is_a_zip_under_the_skill_name_with_executable_bits(client: anthropic.Anthropic) -> None:
    name = unique_name()
    skill = client.beta.skills.create(
        files=skill_files(
            name, {"scripts/run.py": b"#!/usr/bin/env python3\nprint(1)\n", "data.csv": b"a,b\n"}
        )
    )

    response = client.beta.skills.versions.download(skill.latest_version_id, skill_id=skill.id)
    entries = _archive(response.read())
    assert response.http_response.headers["content-type"] == "application/zip"
    assert f'filename="{name}.zip"' in response.http_response.headers["content-disposition"]
    assert sorted(entries) == [f"{name}/SKILL.md", f"{name}/data.csv", f"{name}/scripts/run.py"]
    assert entries[f"{name}/scripts/run.py"] == (b"#!/usr/bin/env python3\nprint(1)\n", EXECUTABLE)
    assert entries[f"{name}/data.csv"] == (b"a,b\n", REGULAR)
    assert entries[f"{name}/SKILL.md"][0] == skill_md(name)
    again = client.beta.skills.versions.download("latest", skill_id=skill.id).read()
    assert _archive(again) == entries


def test_a_zip_upload_keeps_the_modes_it_recorded(client: anthropic.Anthropic) -> None:
    name = unique_name()
    archive = zipped(
        {
            f"{name}/": (b"", stat.S_IFDIR | 0o755),
            f"{name}/SKILL.md": (skill_md(name), REGULAR),
            f"{name}/bin/tool": (b"\x7fELF binary", EXECUTABLE),
            f"{name}/notes.txt": (b"#! not a script, but mode 644 says so", REGULAR),
        }
    )
    skill = client.beta.skills.create(files=[("bundle.zip", archive, "application/zip")])

    entries = _archive(
        client.beta.skills.versions.download(skill.latest_version_id, skill_id=skill.id).read()
    )
    assert entries[f"{name}/bin/tool"] == (b"\x7fELF binary", EXECUTABLE)
    assert entries[f"{name}/notes.txt"][1] == REGULAR


async def test_the_sdk_worker_materialises_a_session_skill(
    async_client: anthropic.AsyncAnthropic, client: anthropic.Anthropic, tmp_path: Path
) -> None:
    name = unique_name("greeting")
    skill = client.beta.skills.create(files=files_from_dir(_skill_dir(tmp_path, name)))
    agent = client.beta.agents.create(
        name="greeter",
        model=MODEL,
        tools=[{"type": "agent_toolset_20260401"}],
        skills=[{"type": "custom", "skill_id": skill.id}],
    )
    environment = client.beta.environments.create(name="skills")
    session = client.beta.sessions.create(agent=agent.id, environment_id=environment.id)

    workdir = tmp_path / "work"
    downloaded = await download_session_skills(async_client, workdir=workdir, session=session)

    skill_dir = workdir.resolve() / "skills" / name
    assert downloaded == [skill_dir]
    assert (skill_dir / "SKILL.md").read_bytes() == skill_md(name, body="Run scripts/greet.sh NAME.")
    assert os.access(skill_dir / "scripts" / "greet.sh", os.X_OK)
    assert not os.access(skill_dir / "reference.md", os.X_OK)


def test_deleting_versions_moves_latest_and_keeps_one(client: anthropic.Anthropic) -> None:
    name = unique_name()
    skill = make_skill(client, name)
    second = client.beta.skills.versions.create(skill.id, files=skill_files(name))
    epoch = str(second.model_dump()["version"])

    deleted = client.beta.skills.versions.delete(epoch, skill_id=skill.id)

    assert (deleted.id, deleted.type) == (second.id, "skill_version_deleted")
    assert client.beta.skills.retrieve(skill.id).latest_version_id == skill.latest_version_id
    with pytest.raises(anthropic.NotFoundError):
        client.beta.skills.versions.retrieve(second.id, skill_id=skill.id)
    with pytest.raises(anthropic.BadRequestError, match="keeps at least one"):
        client.beta.skills.versions.delete(skill.latest_version_id, skill_id=skill.id)
    with pytest.raises(anthropic.BadRequestError, match="not 'latest'"):
        client.beta.skills.versions.delete("latest", skill_id=skill.id)


async def test_deleting_a_skill_deletes_its_versions_and_their_content(
    client: anthropic.Anthropic, mas_server: ServerThread, database: Database
) -> None:
    name = unique_name()
    unique = f"only in this skill: {name}".encode()
    skill = client.beta.skills.create(files=skill_files(name, {"notes.txt": unique}))
    client.beta.skills.versions.create(skill.id, files=skill_files(name, {"notes.txt": unique}))
    sha256 = hashlib.sha256(unique).hexdigest()
    blobs = LocalDiskBackend(mas_server.settings.storage_dir)
    assert await _refs(database, sha256) == 2  # stored once for both versions
    assert blobs.local_path(sha256).read_bytes() == unique

    deleted = client.beta.skills.delete(skill.id)

    assert (deleted.id, deleted.type) == (skill.id, "skill_deleted")
    with pytest.raises(anthropic.NotFoundError):
        client.beta.skills.retrieve(skill.id)
    with pytest.raises(anthropic.NotFoundError):
        client.beta.skills.versions.list(skill.id)
    await storage.sweep(database, blobs)
    assert await _refs(database, sha256) is None and not blobs.exists(sha256)


async def _refs(database: Database, sha256: str) -> int | None:
    async with database.read() as db:
        return await db.scalar(select(ContentBlob.refs).where(ContentBlob.sha256 == sha256))


def test_list_newest_first_with_pages_and_source(client: anthropic.Anthropic) -> None:
    made = [make_skill(client).id for _ in range(3)]

    first = client.beta.skills.list(limit=2)
    ids = [s.id for s in client.beta.skills.list(limit=2)]  # auto-paging over every page

    assert [s.id for s in first.data] == made[::-1][:2] and first.next_page
    assert ids.index(made[2]) < ids.index(made[1]) < ids.index(made[0])
    assert client.beta.skills.list(source="anthropic").data == []
    assert made[0] in [s.id for s in client.beta.skills.list(source="custom", limit=1000)]
    with pytest.raises(anthropic.BadRequestError, match="source: expected one of custom, anthropic"):
        client.beta.skills.list(source="plugin")


def test_unknown_skill_and_version_are_404(client: anthropic.Anthropic) -> None:
    skill = make_skill(client)
    for call in (
        lambda: client.beta.skills.retrieve("skill_missing"),
        lambda: client.beta.skills.delete("skill_missing"),
        lambda: client.beta.skills.versions.retrieve("skill_version_missing", skill_id=skill.id),
        lambda: client.beta.skills.versions.retrieve("1759178010641129", skill_id=skill.id),
        lambda: client.beta.skills.versions.download("skill_version_missing", skill_id=skill.id),
        lambda: client.beta.skills.versions.create("skill_missing", files=skill_files("x")),
    ):
        with pytest.raises(anthropic.NotFoundError):
            call()


def test_a_skill_file_sharing_bytes_with_an_uploaded_file_stays_whole(client: anthropic.Anthropic) -> None:
    """Skill files and Files API uploads are one content store: the same bytes stored once serve
    both, and either going leaves the other whole."""
    name = unique_name()
    shared = f"shared by a skill and a file: {name}".encode()
    uploaded = client.beta.files.upload(file=("shared.txt", shared, "text/plain"))
    skill = client.beta.skills.create(files=skill_files(name, {"shared.txt": shared}))
    client.beta.files.delete(uploaded.id)

    download = client.beta.skills.versions.download(skill.latest_version_id, skill_id=skill.id)

    assert _archive(download.read())[f"{name}/shared.txt"][0] == shared
