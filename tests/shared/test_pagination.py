"""Page cursors: the compact JSON they carry is the same whichever encoder writes it."""

from __future__ import annotations

import base64
import json

import pytest

from app.shared.pagination import PREFIX, Cursor, decode_cursor, encode_cursor


@pytest.mark.parametrize(
    "key",
    [
        ("2026-11-30T12:00:00.123456+00:00", "sesn_01abc"),
        (42,),
        ("name with é, 漢字 and 🙂", "a \"quoted\" \\ path\n\t\x01"),
    ],
)
@pytest.mark.parametrize("direction", ["next", "prev"])
def test_a_cursor_is_the_json_it_always_was_and_decodes_back(key: tuple[object, ...], direction: str) -> None:
    cursor = Cursor("desc", key, "next" if direction == "next" else "prev")
    token = encode_cursor(cursor)
    expected = json.dumps({"o": "desc", "k": list(key), "d": direction}, separators=(",", ":"))
    assert token == PREFIX + base64.urlsafe_b64encode(expected.encode()).decode().rstrip("=")
    assert decode_cursor(token, "desc") == cursor
