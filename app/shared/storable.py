"""JSON values either database can store: no NUL character, no lone UTF-16 surrogate.

The API refuses such text from clients (400 at the body's edge). What the server produces itself
(a tool's binary output, a model's reply, an error message) is made storable instead: each NUL
and each lone surrogate becomes U+FFFD, the replacement character, so the rest is kept and reads
the same on SQLite and PostgreSQL (whose text and jsonb cannot hold NUL).
"""

from __future__ import annotations

import json
import re
from typing import Any

REPLACEMENT = "\ufffd"
_SURROGATE = re.compile("[\ud800-\udfff]")
# A NUL escape in JSON text: \u0000 preceded by an even number of further backslashes (an odd
# run would make its last backslash an escaped one, i.e. the literal text "\u0000").
_NUL_ESCAPE = re.compile(r"(\\+)u0000")


def _fix_nul(match: re.Match[str]) -> str:
    backslashes = match.group(1)
    if len(backslashes) % 2 == 0:
        return match.group(0)
    return backslashes[:-1] + REPLACEMENT


def storable_json_text(value: Any) -> str:
    """``value`` as JSON text (non-ASCII kept as is), with NULs and lone surrogates replaced."""
    text = json.dumps(value, ensure_ascii=False)
    if "\\u0000" in text:
        text = _NUL_ESCAPE.sub(_fix_nul, text)
    if _SURROGATE.search(text):
        text = _SURROGATE.sub(REPLACEMENT, text)
    return text


def storable(value: Any) -> Any:
    """``value`` itself when it is storable (the common case), else a copy with replacements."""
    text = json.dumps(value, ensure_ascii=False)
    if "\\u0000" not in text and not _SURROGATE.search(text):
        return value
    return json.loads(storable_json_text(value))
