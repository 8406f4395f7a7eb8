"""Resource ids: a prefix plus 24 base62 characters, like ``agent_011CZkYpogX7uDKUyvBTophP``.

Ids start with a time component so they sort roughly by creation time (useful in logs).
"""

from __future__ import annotations

import secrets
import time

_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def _base62(number: int, width: int) -> str:
    chars = []
    for _ in range(width):
        number, rem = divmod(number, 62)
        chars.append(_ALPHABET[rem])
    return "".join(reversed(chars))


def new_id(prefix: str) -> str:
    stamp = _base62(time.time_ns() // 1_000_000, 8)
    rand = "".join(secrets.choice(_ALPHABET) for _ in range(16))
    return f"{prefix}_01{stamp}{rand}"[: len(prefix) + 1 + 26]
