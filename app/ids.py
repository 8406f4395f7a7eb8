"""Resource ids: a prefix plus 24 base62 characters, like ``agent_011CZkYpogX7uDKUyvBTophP``.

Ids start with a time component so they sort roughly by creation time (useful in logs). Every
request gets one (its ``request-id``), so making one is kept cheap: one ``os.urandom`` read for
the 16 random characters (96 bits), not one ``secrets.choice`` call per character.
"""

from __future__ import annotations

import os
import time

_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_RANDOM_CHARS = 16
_RANDOM_BYTES = 12  # 96 bits for 16 base62 characters (62**16 is about 2**95.3)


def _base62(number: int, width: int) -> str:
    chars = []
    for _ in range(width):
        number, rem = divmod(number, 62)
        chars.append(_ALPHABET[rem])
    return "".join(reversed(chars))


def _random_part() -> str:
    # 96 random bits reduced modulo 62**16: some values are twice as likely as others, which
    # still leaves over 94 bits of entropy; ids need uniqueness, not a uniform distribution.
    return _base62(int.from_bytes(os.urandom(_RANDOM_BYTES), "big"), _RANDOM_CHARS)


def new_id(prefix: str) -> str:
    stamp = _base62(time.time_ns() // 1_000_000, 8)
    return f"{prefix}_01{stamp}{_random_part()}"[: len(prefix) + 1 + 26]
