"""Checks for text a client stores: what the databases cannot hold becomes a 400, not a 500.

PostgreSQL refuses NUL characters in text and JSON, and no database takes a lone UTF-16
surrogate (JSON lets a client send one as ``"\\ud800"``).
"""

from __future__ import annotations

import unicodedata

from app.errors import InvalidRequest
from app.shared.content import ContentBlock


def utf8_size(value: str, field: str) -> int:
    """The UTF-8 size of ``value``; 400 if it holds a lone surrogate or a NUL character."""
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError:
        raise InvalidRequest(f"{field}: not valid Unicode text (it holds a lone surrogate)") from None
    if "\x00" in value:
        raise InvalidRequest(f"{field}: NUL characters are not allowed")
    return size


def check_single_line(value: str, field: str) -> str:
    """400 if ``value`` holds control characters (line breaks included) or is not storable."""
    utf8_size(value, field)
    if any(unicodedata.category(c) == "Cc" for c in value):
        raise InvalidRequest(f"{field}: control characters are not allowed")
    return value


def storable_blocks(blocks: list[ContentBlock]) -> list[ContentBlock]:
    """Content blocks from a tool, with NUL characters (which PostgreSQL cannot store in JSON)
    shown as U+FFFD: a tool that prints one must not stop the session."""
    return [
        {**b, "text": b["text"].replace("\x00", "\ufffd")}
        if isinstance(b.get("text"), str) and "\x00" in b["text"]
        else b
        for b in blocks
    ]
