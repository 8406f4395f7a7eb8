"""How a Messages API request is matched to a recorded one: normalisation, keys, explained misses.

A request is normalised before it is stored or looked up, so that what changes from run to run
without changing the meaning does not break a replay:

* ``cache_control`` markers are dropped wherever they appear (caching is a cost, not a meaning);
* tool-use ids (``toolu_…``, ``srvtoolu_…``, and every ``id``/``tool_use_id`` of a tool block)
  become ``toolu_1``, ``toolu_2``, … in order of first appearance;
* ISO-8601 timestamps inside strings become ``<timestamp>``;
* ``metadata`` (per-request user ids) and ``stream`` are left out.

Everything else (model, system, tools, messages, max_tokens, thinking, tool_choice) must be equal.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

from pydantic import JsonValue

VOLATILE_TOP_LEVEL = ("metadata", "stream")
TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?")
TOOL_ID = re.compile(r"\b(?:srv)?toolu_[A-Za-z0-9_]+\b")
_ID_KEYS = {"id", "tool_use_id"}
_TOOL_BLOCKS = {
    "tool_use",
    "server_tool_use",
    "mcp_tool_use",
    "tool_result",
    "web_search_tool_result",
    "web_fetch_tool_result",
    "mcp_tool_result",
}
MAX_DIFFERENCES = 5
COUNT_LIMIT = 200  # enough to rank candidates without walking huge histories to the end
MAX_SHOWN = 80


class _Ids:
    def __init__(self) -> None:
        self.seen: dict[str, str] = {}

    def __call__(self, original: str) -> str:
        return self.seen.setdefault(original, f"toolu_{len(self.seen) + 1}")


def normalise(body: dict[str, JsonValue]) -> dict[str, JsonValue]:
    """The request as stored in a cassette and compared on replay."""
    ids = _Ids()
    kept = {key: value for key, value in body.items() if key not in VOLATILE_TOP_LEVEL}
    result = _normalise(kept, ids)
    assert isinstance(result, dict)  # a dict in, a dict out
    return result


def _normalise(value: JsonValue, ids: _Ids) -> JsonValue:
    if isinstance(value, dict):
        tool_block = value.get("type") in _TOOL_BLOCKS
        out: dict[str, JsonValue] = {}
        for key, item in value.items():
            if key == "cache_control":
                continue
            if tool_block and key in _ID_KEYS and isinstance(item, str):
                out[key] = ids(item)
            else:
                out[key] = _normalise(item, ids)
        return out
    if isinstance(value, list):
        return [_normalise(item, ids) for item in value]
    if isinstance(value, str):
        return TIMESTAMP.sub("<timestamp>", TOOL_ID.sub(lambda m: ids(m.group(0)), value))
    return value


def key(normalised: dict[str, JsonValue], endpoint: str) -> str:
    """A canonical text of an (endpoint, normalised request): equal keys replay the same answers."""
    return endpoint + "\n" + json.dumps(normalised, sort_keys=True, separators=(",", ":"))


def differences(recorded: Any, requested: Any, path: str = "") -> list[str]:
    """Where two normalised requests differ, as readable `path: recorded … , requested …` lines."""
    found: list[str] = []
    _diff(recorded, requested, path, found, limit=MAX_DIFFERENCES)
    return found


def _diff(recorded: Any, requested: Any, path: str, found: list[str], *, limit: int) -> None:
    if len(found) >= limit or recorded == requested:
        return
    if isinstance(recorded, dict) and isinstance(requested, dict):
        for name in sorted(set(recorded) | set(requested)):
            sub = f"{path}.{name}" if path else name
            if name not in recorded:
                found.append(f"{sub}: not recorded, requested {_shown(requested[name])}")
            elif name not in requested:
                found.append(f"{sub}: recorded {_shown(recorded[name])}, not requested")
            else:
                _diff(recorded[name], requested[name], sub, found, limit=limit)
            if len(found) >= limit:
                return
        return
    if isinstance(recorded, list) and isinstance(requested, list):
        for index, (a, b) in enumerate(zip(recorded, requested, strict=False)):
            _diff(a, b, f"{path}[{index}]", found, limit=limit)
        if len(recorded) != len(requested) and len(found) < limit:
            found.append(f"{path}: {len(recorded)} items recorded, {len(requested)} requested")
        return
    found.append(f"{path}: recorded {_shown(recorded)}, requested {_shown(requested)}")


def _shown(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= MAX_SHOWN else text[: MAX_SHOWN - 1] + "…"


def closest(
    candidates: Iterable[tuple[int, dict[str, JsonValue]]], requested: dict[str, JsonValue]
) -> tuple[int, list[str]] | None:
    """The recorded request (its position) that differs from `requested` in the fewest places,
    the earliest on a tie, with those differences spelled out."""
    best: tuple[int, int, dict[str, JsonValue]] | None = None
    for position, recorded in candidates:
        found: list[str] = []
        _diff(recorded, requested, "", found, limit=COUNT_LIMIT)
        if best is None or len(found) < best[1]:
            best = (position, len(found), recorded)
    if best is None:
        return None
    return best[0], differences(best[2], requested)
