"""SKILL.md frontmatter: the `name` and `description` a skill is listed by.

The rules are the hosted ones: `name` is 1-64 lowercase letters, digits and hyphens, without the
reserved words "anthropic" and "claude"; `description` is non-empty, at most 1,024 characters,
and holds no XML tags (both end up in the agent's system prompt).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import yaml

from app.errors import InvalidRequest
from app.shared.text import utf8_size

MAX_NAME_CHARS = 64
MAX_DESCRIPTION_CHARS = 1024
RESERVED_WORDS = ("anthropic", "claude")

_NAME = re.compile(r"[a-z0-9-]+")
_XML_TAG = re.compile(r"<\s*/?\s*[A-Za-z][^<>]*>")
_FRONTMATTER = re.compile(r"\A---[ \t]*\r?\n(.*?)^---[ \t]*$", re.DOTALL | re.MULTILINE)


@dataclass(frozen=True)
class SkillHeader:
    name: str
    description: str


def _fail(message: str) -> InvalidRequest:
    return InvalidRequest(f"SKILL.md: {message}")


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError:
        raise _fail("must be UTF-8 text") from None


def _mapping(text: str) -> dict[Any, Any]:
    match = _FRONTMATTER.match(text)
    if match is None:
        raise _fail(
            "must start with YAML frontmatter between '---' lines, e.g. "
            "'---\\nname: my-skill\\ndescription: What it does and when to use it.\\n---'"
        )
    try:
        loaded = yaml.safe_load(match.group(1))
    except yaml.YAMLError as exc:
        raise _fail(f"the frontmatter is not valid YAML: {exc}") from None
    except RecursionError:
        raise _fail("the frontmatter is nested too deeply") from None
    if not isinstance(loaded, dict):
        raise _fail("the frontmatter must be a YAML mapping with `name` and `description`")
    return loaded


def _name(value: object) -> str:
    if value is None or value == "":
        raise _fail("the frontmatter needs a `name` (lowercase letters, digits and hyphens)")
    if not isinstance(value, str):
        raise _fail(f"`name` must be a string, not {type(value).__name__}")
    if len(value) > MAX_NAME_CHARS:
        raise _fail(f"`name` is {len(value)} characters; the limit is {MAX_NAME_CHARS}")
    if not _NAME.fullmatch(value):
        raise _fail(f"`name` {value!r} may contain only lowercase letters, digits and hyphens")
    for word in RESERVED_WORDS:
        if word in value:
            raise _fail(f"`name` {value!r} contains the reserved word {word!r}")
    return value


def _description(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _fail("the frontmatter needs a non-empty `description` (what the skill does, when to use it)")
    if len(value) > MAX_DESCRIPTION_CHARS:
        raise _fail(f"`description` is {len(value)} characters; the limit is {MAX_DESCRIPTION_CHARS}")
    if _XML_TAG.search(value):
        raise _fail("`description` must not contain XML tags")
    utf8_size(value, "SKILL.md: `description`")
    return value.strip()


def parse_header(data: bytes) -> SkillHeader:
    """The skill's name and description from the bytes of its SKILL.md."""
    fields = _mapping(_decode(data))
    return SkillHeader(name=_name(fields.get("name")), description=_description(fields.get("description")))
