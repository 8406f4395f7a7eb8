"""Sessions as JSON straight from their stored columns, for the sessions list.

A session shows its stored columns (the agent snapshot, metadata, resources, usage, ...) as they
are, plus three figures that move with the clock: `stats.active_seconds`, `stats.duration_seconds`
and `usage.active_seconds`. So a row's JSON is rendered once per *content* of its columns and kept
(`RenderedSessions`, keyed by the row's stored values themselves, so a changed row is a new key and
nothing needs invalidating, in any process); each request only fills in the three figures.

The bytes are those of ``service.to_out`` serialised as `SessionOut` (field order, compact JSON,
pydantic's float and datetime forms): `tests/api/test_fast_reads.py` holds them equal.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pydantic import TypeAdapter
from pydantic_core import to_json

from app.db.raw import Row, json_value, timestamp
from app.db.session_json import Budget, PublicUsage, ResourceJson, UsageTotals
from app.sessions import outcomes
from app.sessions.repository import SessionColumns, columns
from app.sessions.resource_schemas import StoredResource
from app.sessions.schemas import public_usage, rolled_up

# Stand-ins rendered in place of the clock's figures, then cut out: no real figure is this large.
_ACTIVE = 9.87654321e299
_DURATION = 8.76543219e299
_ACTIVE_TOKEN = to_json(_ACTIVE)
_DURATION_TOKEN = to_json(_DURATION)


# The validators `SessionOut` applies to these fields: they also put the keys of the JSON values in
# the order of their types (PostgreSQL's JSONB hands them back in its own order).
_RESOURCES: TypeAdapter[list[ResourceJson]] = TypeAdapter(list[StoredResource])
_USAGE: TypeAdapter[PublicUsage] = TypeAdapter(PublicUsage)
_BUDGET: TypeAdapter[Budget | None] = TypeAdapter(Budget | None)


def session_json(
    row: SessionColumns, active: float, duration: float, threads_usage: Sequence[UsageTotals]
) -> dict[str, Any]:
    """`SessionOut`'s fields, in its order, as plain values (``service.to_out`` without a model)."""
    return {
        "id": row.id,
        "type": "session",
        "agent": row.agent,
        "environment_id": row.environment_id,
        "status": row.status,
        "title": row.title,
        "metadata": row.metadata_,
        "resources": _RESOURCES.validate_python(row.resources),
        "vault_ids": row.vault_ids,
        "outcome_evaluations": outcomes.public(row),
        "stats": {"active_seconds": active, "duration_seconds": duration},
        "usage": _USAGE.validate_python(public_usage(rolled_up(row.usage, threads_usage), active)),
        "budget": _BUDGET.validate_python(row.budget),
        "deployment_id": row.deployment_id,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
        "archived_at": row.archived_at,
    }


def clock_figures(row: Row | SessionColumns, now: datetime) -> tuple[float, float]:
    """(active seconds rounded as shown, duration seconds) of a session at ``now``."""
    running_since: datetime | None
    created_at: datetime | None
    terminated_at: datetime | None
    if isinstance(row, SessionColumns):
        active_seconds = row.active_seconds
        running_since, created_at, terminated_at = row.running_since, row.created_at, row.terminated_at
    else:
        active_seconds = float(row[10] or 0.0)
        running_since, created_at, terminated_at = timestamp(row[11]), timestamp(row[12]), timestamp(row[15])
    assert created_at is not None, "a NOT NULL timestamp"
    active = active_seconds + ((now - running_since).total_seconds() if running_since else 0.0)
    return round(active, 3), ((terminated_at or now) - created_at).total_seconds()


class RenderedSessions:
    """Each row's JSON split around the clock's figures, for at most ``size`` distinct rows
    holding at most ``max_bytes`` of JSON (emptied when full)."""

    def __init__(self, size: int = 4096, max_bytes: int = 32 * 1024 * 1024) -> None:
        self.size = size
        self.max_bytes = max_bytes
        self._parts: dict[tuple[Any, ...], tuple[list[bytes], list[bool]]] = {}
        self._held = 0
        self._multiagent: dict[Any, bool] = {}

    def is_multiagent(self, row: Row) -> bool:
        """Whether the row's agent snapshot delegates to threads (decided once per snapshot)."""
        agent = row[1]
        found = self._multiagent.get(agent)
        if found is None:
            if len(self._multiagent) >= self.size:
                self._multiagent.clear()
            found = self._multiagent[agent] = bool(json_value(agent).get("multiagent"))
        return found

    def render(self, row: Row, now: datetime, threads_usage: Sequence[UsageTotals] | None) -> bytes:
        """``row`` (a plain row of ``repository.SHOWN``) as JSON at ``now``. ``threads_usage``:
        the child threads' usage of a multi-agent session (None: not one), part of the key."""
        key = (*row, to_json(threads_usage) if threads_usage else None)
        found = self._parts.get(key)
        if found is None:
            found = self._split(row, threads_usage or ())
            if found is not None:
                # The key holds the row's stored texts, the value about as much again as JSON.
                size = 2 * sum(len(p) for p in found[0])
                if len(self._parts) >= self.size or self._held + size > self.max_bytes:
                    self._parts.clear()
                    self._held = 0
                self._parts[key] = found
                self._held += size
        active, duration = clock_figures(row, now)
        if found is None:  # a row whose JSON holds a stand-in's text elsewhere: render it whole
            return to_json(session_json(columns(row), active, duration, threads_usage or ()))
        parts, is_active = found
        figures = (to_json(active), to_json(duration))
        out = [parts[0]]
        for part, which in zip(parts[1:], is_active, strict=True):
            out += (figures[0] if which else figures[1], part)
        return b"".join(out)

    @staticmethod
    def _split(row: Row, threads_usage: Sequence[UsageTotals]) -> tuple[list[bytes], list[bool]] | None:
        rendered = to_json(session_json(columns(row), _ACTIVE, _DURATION, threads_usage))
        if rendered.count(_ACTIVE_TOKEN) != 2 or rendered.count(_DURATION_TOKEN) != 1:
            return None
        parts: list[bytes] = []
        is_active: list[bool] = []
        rest = rendered
        while True:
            a, d = rest.find(_ACTIVE_TOKEN), rest.find(_DURATION_TOKEN)
            if a < 0 and d < 0:
                parts.append(rest)
                return parts, is_active
            at, token = (a, _ACTIVE_TOKEN) if d < 0 or (0 <= a < d) else (d, _DURATION_TOKEN)
            parts.append(rest[:at])
            is_active.append(token is _ACTIVE_TOKEN)
            rest = rest[at + len(token) :]
