"""Opaque page cursors that remember their order.

A cursor is ``page_`` + base64url(JSON ``{"o": order, "k": [sort key...], "d": "next"|"prev"}``).
A cursor that does not decode is a 400 ("invalid page cursor"); reusing one with another order is a
400 too ("page token order does not match request"), as on the hosted API.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, Protocol, TypeVar

from pydantic_core import to_json

from app.errors import InvalidRequest
from app.shared.validation import INT64_MAX

Order = Literal["asc", "desc"]
Direction = Literal["next", "prev"]
PREFIX = "page_"
_SURROGATE = re.compile("[\ud800-\udfff]")


@dataclass(frozen=True)
class Cursor:
    order: Order
    key: tuple[Any, ...]
    direction: Direction = "next"


def encode_cursor(cursor: Cursor) -> str:
    value = {"o": cursor.order, "k": list(cursor.key), "d": cursor.direction}
    # pydantic-core writes the same compact JSON as `json.dumps(..., separators=(",", ":"))` for
    # ASCII text, about ten times faster; text beyond ASCII keeps json's \u escapes (same cursor).
    raw = to_json(value)
    if not raw.isascii():
        raw = json.dumps(value, separators=(",", ":")).encode()
    return PREFIX + base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode(token: str) -> Cursor:
    if not token.startswith(PREFIX):
        raise ValueError("prefix")
    payload = token[len(PREFIX) :]
    data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    if (
        not isinstance(data, dict)
        or data.get("o") not in ("asc", "desc")
        or not isinstance(data.get("k"), list)
    ):
        raise ValueError("shape")
    if data.get("d", "next") not in ("next", "prev"):
        raise ValueError("direction")
    if not all(_storable_key_part(part) for part in data["k"]):
        raise ValueError("key")
    return Cursor(order=data["o"], key=tuple(data["k"]), direction=data.get("d", "next"))


def _storable_key_part(part: Any) -> bool:
    """What our cursors hold: text a database can compare, or a BIGINT-sized non-negative int."""
    if isinstance(part, str):
        return "\x00" not in part and not _SURROGATE.search(part)
    return type(part) is int and 0 <= part <= INT64_MAX


def decode_cursor(token: str | None, order: Order) -> Cursor | None:
    if token is None or token == "":
        return None
    try:
        cursor = _decode(token)
    except (ValueError, binascii.Error, UnicodeDecodeError, RecursionError):
        raise InvalidRequest("invalid page cursor") from None
    if cursor.order != order:
        raise InvalidRequest("page token order does not match request")
    return cursor


def time_key(created_at: datetime, row_id: str) -> tuple[str, str]:
    """The keyset position of a row listed by (created_at, id)."""
    return (created_at.isoformat(), row_id)


class _Timed(Protocol):
    @property
    def created_at(self) -> datetime: ...
    @property
    def id(self) -> str: ...


T = TypeVar("T", bound=_Timed)


def newest_first_page(rows: Sequence[T], limit: int) -> tuple[Sequence[T], str | None]:
    """A page of rows listed newest first, fetched with ``limit + 1``: the rows to show, and the
    cursor of the next page (None on the last one)."""
    if len(rows) <= limit:
        return rows, None
    last = rows[limit - 1]
    return rows[:limit], encode_cursor(Cursor("desc", time_key(last.created_at, last.id)))


def decode_time_key(cursor: Cursor | None) -> tuple[datetime, str] | None:
    """A (created_at, id) position from a decoded cursor; a key of another shape is a 400."""
    if cursor is None:
        return None
    try:
        created_at, row_id = cursor.key
        parsed = datetime.fromisoformat(created_at)
    except (TypeError, ValueError):
        raise InvalidRequest("invalid page cursor") from None
    # Our cursors carry an offset; one without is read as UTC rather than compared naive (a 500).
    return (parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed), str(row_id)
