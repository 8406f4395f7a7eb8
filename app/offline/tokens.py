"""Deterministic token counts and a simulated prompt cache for the offline model.

Counting: the prompt is the sequence tools, system blocks, then every message's content blocks
(a string content is one text block). Each block counts ``ceil(len(s) / 4)`` tokens, where ``s``
is a text block's text and, for any other block, its compact key-sorted JSON without
``cache_control``. Output blocks count the same way. No per-request or per-message overhead.

Caching mirrors the API's prefix cache: a block carrying ``cache_control`` is a breakpoint, and a
top-level ``cache_control`` marks the last block. A breakpoint writes the prefix that ends there;
a later request reads the longest prefix written before (the same model, unexpired), writes the
segments up to its last breakpoint (each segment with the TTL of the breakpoint ending it:
``"1h"`` or the 5-minute default) and pays the rest as plain input. Reads refresh the TTL.
There is no minimum cacheable length, so even tiny test prompts show cache reads.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

from app.offline.messages import MessagesBody
from app.shared.content import CacheControl, ContentBlock, ToolDefinition

TTL_SECONDS = {"5m": 300.0, "1h": 3600.0}


@dataclass(frozen=True, slots=True)
class Unit:
    """One block of the prompt with the TTL of its breakpoint (None when it has none)."""

    text: str
    cache_ttl: str | None = None

    @property
    def tokens(self) -> int:
        return count_text(self.text)


@dataclass(frozen=True, slots=True)
class CacheUsage:
    input_tokens: int
    cache_read_input_tokens: int = 0
    cache_creation_5m_input_tokens: int = 0
    cache_creation_1h_input_tokens: int = 0

    @property
    def cache_creation_input_tokens(self) -> int:
        return self.cache_creation_5m_input_tokens + self.cache_creation_1h_input_tokens


def count_text(text: str) -> int:
    return math.ceil(len(text) / 4)


def block_text(block: ContentBlock) -> str:
    if block.get("type") == "text" and isinstance(block.get("text"), str):
        return str(block["text"])
    return _json_text(block)


def _json_text(block: ContentBlock | ToolDefinition) -> str:
    stripped = {key: value for key, value in block.items() if key != "cache_control"}
    return json.dumps(stripped, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def count_blocks(blocks: list[ContentBlock]) -> int:
    return sum(count_text(block_text(block)) for block in blocks)


def prompt_units(body: MessagesBody) -> list[Unit]:
    units = [_tool_unit(tool) for tool in body.get("tools") or []]
    units += [_unit(block) for block in as_blocks(body.get("system"))]
    for message in body["messages"]:
        units += [_unit(block) for block in as_blocks(message.get("content"))]
    top_level = body.get("cache_control")
    if isinstance(top_level, dict) and units:
        units[-1] = Unit(units[-1].text, _ttl(top_level))
    return units


def as_blocks(content: object) -> list[ContentBlock]:
    """String content (system or message) is shorthand for one text block."""
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    if isinstance(content, list):
        # The engine reads checked bodies: each object is a block with a `type`.
        return [cast(ContentBlock, block) for block in content if isinstance(block, dict)]
    return []


def _unit(block: ContentBlock) -> Unit:
    control = block.get("cache_control")
    return Unit(block_text(block), _ttl(control) if isinstance(control, dict) else None)


def _tool_unit(tool: ToolDefinition) -> Unit:
    """A tool counts as its JSON (a tool is never a text block)."""
    control = tool.get("cache_control")
    return Unit(_json_text(tool), _ttl(control) if isinstance(control, dict) else None)


def _ttl(control: CacheControl) -> str:
    return "1h" if control.get("ttl") == "1h" else "5m"


class PromptCache:
    """In-memory prefix cache: prefix hash -> expiry time (monotonic clock)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._expiry: dict[str, float] = {}

    def account(self, model: str, units: list[Unit]) -> CacheUsage:
        now = self._clock()
        self._expiry = {key: expiry for key, expiry in self._expiry.items() if expiry > now}
        total = sum(unit.tokens for unit in units)
        breakpoints = [index for index, unit in enumerate(units) if unit.cache_ttl]
        if not breakpoints:
            return CacheUsage(input_tokens=total)
        hashes = _prefix_hashes(model, units)
        hit = max((i for i in range(breakpoints[-1] + 1) if hashes[i] in self._expiry), default=-1)
        read = sum(unit.tokens for unit in units[: hit + 1])
        written = self._write(units, hashes, breakpoints, hit, now)
        return CacheUsage(
            input_tokens=total - read - sum(written.values()),
            cache_read_input_tokens=read,
            cache_creation_5m_input_tokens=written["5m"],
            cache_creation_1h_input_tokens=written["1h"],
        )

    def _write(
        self, units: list[Unit], hashes: list[str], breakpoints: list[int], hit: int, now: float
    ) -> dict[str, int]:
        written = {"5m": 0, "1h": 0}
        start = hit + 1
        for index in breakpoints:
            ttl = units[index].cache_ttl or "5m"
            if index >= start:
                written[ttl] += sum(unit.tokens for unit in units[start : index + 1])
                start = index + 1
            self._expiry[hashes[index]] = now + TTL_SECONDS[ttl]
        if hit >= 0:
            self._expiry[hashes[hit]] = max(self._expiry[hashes[hit]], now + TTL_SECONDS["5m"])
        return written


def _prefix_hashes(model: str, units: list[Unit]) -> list[str]:
    digest = hashlib.sha256(model.encode())
    hashes = []
    for unit in units:
        digest.update(b"\x00" + unit.text.encode())
        hashes.append(digest.copy().hexdigest())
    return hashes
