"""Bad skill uploads: each a clear 4xx in the error envelope naming the file and the rule."""

from __future__ import annotations

import io
import zipfile
from typing import Any

import anthropic
import httpx
import pytest

from tests.skills.factories import (
    EXECUTABLE,
    REGULAR,
    SYMLINK,
    Upload,
    make_skill,
    skill_files,
    skill_md,
    unique_name,
    zipped,
)

GOOD = skill_md("greet")


def _md(frontmatter: str) -> list[Upload]:
    return [("greet/SKILL.md", f"---\n{frontmatter}\n---\nbody\n".encode())]


BAD_UPLOADS: list[tuple[str, list[Any], str]] = [
    ("no files", [], "files: upload the skill's files"),
    ("no SKILL.md", [("greet/README.md", b"# hi")], "files: SKILL.md is missing at the root of greet/"),
    (
        "SKILL.md too deep",
        [("greet/docs/SKILL.md", GOOD)],
        "SKILL.md is missing at the root of greet/ (found greet/docs/SKILL.md)",
    ),
    ("lowercase skill.md", [("greet/skill.md", GOOD)], "(found greet/skill.md)"),
    (
        "two top-level directories",
        [("a/SKILL.md", GOOD), ("b/tool.py", b"")],
        "all files must be in one top-level directory with SKILL.md at its root (found a/, b/)",
    ),
    ("parent traversal", [("greet/SKILL.md", GOOD), ("greet/../../etc/cron.d/x", b"")], "'..' path segments"),
    ("dot segment", [("./greet/SKILL.md", GOOD)], "empty, '.' and '..' path segments are not allowed"),
    ("absolute path", [("/etc/greet/SKILL.md", GOOD)], "absolute paths are not allowed"),
    ("backslashes", [("greet\\SKILL.md", GOOD)], "use '/' to separate directories"),
    ("empty segment", [("greet//SKILL.md", GOOD)], "empty, '.' and '..' path segments"),
    (
        "control character",  # multipart encoders escape them; a zip keeps names as they are
        [("s.zip", zipped({"greet/SKILL.md": (GOOD, REGULAR), "greet/a\x01b": (b"", REGULAR)}))],
        "the path contains control characters",
    ),
    (
        "same path twice",
        [("greet/SKILL.md", GOOD), ("greet/SKILL.md", GOOD)],
        "the same path is uploaded twice",
    ),
    (
        "file and directory",
        [("greet/SKILL.md", GOOD), ("greet/lib", b""), ("greet/lib/x.py", b"")],
        "'greet/lib' is both a file and a directory",
    ),
    ("no frontmatter", [("greet/SKILL.md", b"# Greet\n")], "SKILL.md: must start with YAML frontmatter"),
    ("not YAML", _md("name: [unclosed"), "SKILL.md: the frontmatter is not valid YAML"),
    ("not a mapping", _md("- a\n- b"), "SKILL.md: the frontmatter must be a YAML mapping"),
    ("no name", _md("description: d"), "SKILL.md: the frontmatter needs a `name`"),
    ("name not a string", _md("name: 12\ndescription: d"), "`name` must be a string, not int"),
    (
        "uppercase name",
        _md("name: Greet\ndescription: d"),
        "may contain only lowercase letters, digits and hyphens",
    ),
    ("name too long", _md(f"name: {'a' * 65}\ndescription: d"), "`name` is 65 characters; the limit is 64"),
    ("reserved word", _md("name: claude-helper\ndescription: d"), "contains the reserved word 'claude'"),
    ("no description", _md("name: greet"), "needs a non-empty `description`"),
    ("blank description", _md("name: greet\ndescription: '  '"), "needs a non-empty `description`"),
    ("long description", _md(f"name: greet\ndescription: {'d' * 1025}"), "`description` is 1025 characters"),
    ("XML in description", _md("name: greet\ndescription: Use <b>me</b>"), "must not contain XML tags"),
    (
        "NUL in description",
        _md('name: greet\ndescription: "a\\0b"'),
        "SKILL.md: `description`: NUL characters",
    ),
    ("not UTF-8", [("greet/SKILL.md", b"---\nname: greet\xff\n---\n")], "SKILL.md: must be UTF-8 text"),
    (
        "zip with a symlink",
        [("s.zip", zipped({"greet/SKILL.md": (GOOD, REGULAR), "greet/passwd": (b"/etc/passwd", SYMLINK)}))],
        "member 'greet/passwd': symbolic links are not allowed in a skill",
    ),
    (
        "zip slip",
        [("s.zip", zipped({"greet/SKILL.md": (GOOD, REGULAR), "greet/../../x": (b"", REGULAR)}))],
        "member 'greet/../../x': empty, '.' and '..' path segments are not allowed",
    ),
    (
        "zip with a device",
        [("s.zip", zipped({"greet/SKILL.md": (GOOD, REGULAR), "greet/null": (b"", 0o020666)}))],
        "only regular files and directories are allowed",
    ),
    ("broken zip", [("s.zip", b"PK\x03\x04 not really")], "not a readable zip archive"),
    ("empty zip", [("s.zip", zipped({}))], "files: the archive holds no files"),
]


@pytest.mark.parametrize(("files", "message"), [c[1:] for c in BAD_UPLOADS], ids=[c[0] for c in BAD_UPLOADS])
def test_bad_upload_is_a_400_naming_the_problem(
    client: anthropic.Anthropic, files: list[Any], message: str
) -> None:
    with pytest.raises(anthropic.BadRequestError) as exc:
        client.beta.skills.create(files=files)

    error = exc.value.body["error"]  # type: ignore[index]
    assert error["type"] == "invalid_request_error"
    assert message in error["message"]


def test_a_file_without_a_filename(client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.BadRequestError, match="a file part has no filename"):
        client.beta.skills.create(files=[io.BytesIO(GOOD)])


def test_files_in_the_wrong_part(http: httpx.Client) -> None:
    response = http.post("/v1/skills", files={"file": ("greet/SKILL.md", GOOD)})

    assert response.status_code == 400
    assert "send the skill's files as `files[]` parts" in response.json()["error"]["message"]


def test_a_json_body_is_not_an_upload(http: httpx.Client) -> None:
    response = http.post("/v1/skills", json={"files": ["greet/SKILL.md"]})

    assert response.status_code == 400
    assert (
        response.json()["error"]["message"]
        == "expected a multipart/form-data body with the files as files[] parts"
    )


def test_size_limit_is_a_413(client: anthropic.Anthropic) -> None:
    limit = 8 * 1024 * 1024
    files = [*skill_files("big"), ("big/data.bin", b"x" * (limit - len(skill_md("big")) + 1))]

    with pytest.raises(anthropic.APIStatusError) as exc:
        client.beta.skills.create(files=files)

    assert exc.value.status_code == 413
    assert exc.value.body["error"]["type"] == "request_too_large"  # type: ignore[index]
    assert "the limit is 8,388,608 bytes in all" in str(exc.value)


def test_a_body_far_over_the_limit_is_refused_before_it_is_read(http: httpx.Client) -> None:
    response = http.post(
        "/v1/skills",
        content=b"x" * (10 * 1024 * 1024),
        headers={"content-type": "multipart/form-data; boundary=b"},
    )

    assert response.status_code == 413 and "the upload is larger than" in response.json()["error"]["message"]


def test_a_zip_bomb_is_cut_off_at_the_limit(client: anthropic.Anthropic) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("bomb/SKILL.md", skill_md("bomb"))
        archive.writestr("bomb/zeros", b"\0" * (9 * 1024 * 1024))
    assert len(buffer.getvalue()) < 64 * 1024

    with pytest.raises(anthropic.APIStatusError) as exc:
        client.beta.skills.create(files=[("bomb.zip", buffer.getvalue())])

    assert exc.value.status_code == 413


def test_file_count_limit(client: anthropic.Anthropic) -> None:
    files = [*skill_files("many"), *[(f"many/f{i}.txt", b"") for i in range(500)]]

    with pytest.raises(anthropic.BadRequestError, match="Maximum number of files is 500"):
        client.beta.skills.create(files=files)


def test_files_at_the_root_are_the_skill_directory(client: anthropic.Anthropic) -> None:
    name = unique_name()
    skill = client.beta.skills.create(files=[("SKILL.md", skill_md(name)), ("scripts/go.sh", b"#!/bin/sh\n")])

    data = client.beta.skills.versions.download(skill.latest_version_id, skill_id=skill.id).read()
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        modes = {i.filename: i.external_attr >> 16 for i in archive.infolist()}
    assert modes == {f"{name}/SKILL.md": REGULAR, f"{name}/scripts/go.sh": EXECUTABLE}


@pytest.mark.parametrize(
    ("display_name", "message"),
    [
        ("x" * 256, "display_name: at most 255 characters"),
        ("two\nlines", "display_name: control characters are not allowed"),
        ("a\x00b", "display_name: NUL characters are not allowed"),
    ],
)
def test_display_name_rules(client: anthropic.Anthropic, display_name: str, message: str) -> None:
    with pytest.raises(anthropic.BadRequestError, match=message):
        client.beta.skills.create(files=skill_files(unique_name()), display_name=display_name)


def test_a_new_version_keeps_the_skill_name(client: anthropic.Anthropic) -> None:
    skill = make_skill(client, unique_name("first"))

    with pytest.raises(anthropic.BadRequestError) as exc:
        client.beta.skills.versions.create(skill.id, files=skill_files("other-name"))

    assert "`name` is 'other-name', but this skill is named 'first-" in str(exc.value)
    assert [v.id for v in client.beta.skills.versions.list(skill.id)] == [skill.latest_version_id]
