"""Sessions as JSON straight from their stored columns, for the sessions list.

A session shows its stored columns (the agent snapshot, metadata, resources, usage, ...) as they
are, plus three figures that move with the clock: `stats.active_seconds`, `stats.duration_seconds`
and `usage.active_seconds`. So a row's JSON is rendered once per *content* of its columns and kept
(`RenderedSessions`), keyed by the row's stored values themselves and by the row's version, (id,
`row_version`), which a trigger moves on every UPDATE of the row (migration fb73c88554c1): a
changed row is a new key either way and nothing needs invalidating, in any process. Each request
only fills in the three figures.

The bytes are those of ``service.to_out`` serialised as `SessionOut` (field order, compact JSON,
pydantic's float and datetime forms): `tests/api/test_fast_reads.py` holds them equal.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, TypedDict

from pydantic import TypeAdapter
from pydantic_core import to_json

from app.db.raw import Row, json_value, timestamp
from app.db.session_json import Budget, OutcomeEvaluation, PublicUsage, ResourceJson, UsageTotals
from app.sessions import outcomes
from app.sessions.repository import SessionColumns, columns
from app.sessions.resource_schemas import StoredResource
from app.sessions.schemas import public_usage, rolled_up
from app.shared.agent_config import SessionAgent

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


class _Stats(TypedDict):
    active_seconds: float
    duration_seconds: float


class SessionJson(TypedDict):
    """`SessionOut`'s fields, in its order."""

    id: str
    type: Literal["session"]
    agent: SessionAgent
    environment_id: str
    status: str
    title: str | None
    metadata: dict[str, str]
    resources: list[ResourceJson]
    vault_ids: list[str]
    outcome_evaluations: list[OutcomeEvaluation]
    stats: _Stats
    usage: PublicUsage
    budget: Budget | None
    deployment_id: str | None
    created_at: datetime
    updated_at: datetime
    archived_at: datetime | None


def session_json(
    row: SessionColumns, active: float, duration: float, threads_usage: Sequence[UsageTotals]
) -> SessionJson:
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
    if isinstance(row, SessionColumns):
        return _Clock(row.active_seconds, row.running_since, row.created_at, row.terminated_at).figures(now)
    return _Clock.of(row).figures(now)


@dataclass(frozen=True, slots=True)
class _Clock:
    """What the clock's figures are computed from (parsed once per kept rendering)."""

    active_seconds: float
    running_since: datetime | None
    created_at: datetime | None
    terminated_at: datetime | None

    @classmethod
    def of(cls, row: Row) -> _Clock:
        return cls(float(row[10] or 0.0), timestamp(row[11]), timestamp(row[12]), timestamp(row[15]))

    def active(self, now: datetime) -> float:
        running = (now - self.running_since).total_seconds() if self.running_since else 0.0
        return round(self.active_seconds + running, 3)

    def duration(self, now: datetime) -> float:
        assert self.created_at is not None, "a NOT NULL timestamp"
        return ((self.terminated_at or now) - self.created_at).total_seconds()

    def figures(self, now: datetime) -> tuple[float, float]:
        return self.active(now), self.duration(now)


@dataclass(frozen=True, slots=True)
class _Kept:
    """A row's JSON cut where a figure that moves with the clock goes: ``parts[0]``, figure,
    ``parts[1]``, figure, ... (``is_active[i]``: the i-th cut takes the active seconds, else the
    duration). A figure that cannot move (the active seconds of a session not running, the
    duration of a terminated one) is written into the parts when kept: no cut left for it."""

    parts: tuple[bytes, ...]
    is_active: tuple[bool, ...]
    clock: _Clock

    def at(self, now: datetime) -> bytes:
        if not self.is_active:
            return self.parts[0]
        clock = self.clock
        figures = (
            to_json(clock.active(now)) if True in self.is_active else b"",
            to_json(clock.duration(now)) if False in self.is_active else b"",
        )
        parts = self.parts
        out = [parts[0]]
        for i, which in enumerate(self.is_active, 1):
            out += (figures[0] if which else figures[1], parts[i])
        return b"".join(out)


class RenderedSessions:
    """Each row's JSON split around the clock's figures, for at most ``size`` distinct rows
    holding at most ``max_bytes`` of JSON (emptied when full)."""

    def __init__(self, size: int = 4096, max_bytes: int = 32 * 1024 * 1024) -> None:
        self.size = size
        self.max_bytes = max_bytes
        self._kept: dict[tuple[Any, ...], _Kept] = {}
        self._versions: dict[tuple[str, int], _Kept] = {}
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

    def kept(self, version: tuple[str, int]) -> _Kept | None:
        """The kept rendering of a row version, (id, row_version); only rows of sessions without
        threads are kept so (a thread's usage changes apart from the row)."""
        return self._versions.get(version)

    def render(
        self,
        row: Row,
        now: datetime,
        threads_usage: Sequence[UsageTotals] | None,
        version: tuple[str, int] | None = None,
    ) -> bytes:
        """``row`` (a plain row of ``repository.SHOWN``) as JSON at ``now``. ``threads_usage``:
        the child threads' usage of a multi-agent session (None: not one), part of the key.
        ``version``: the row's (id, row_version), to keep the rendering by (not for a multi-agent
        one)."""
        key = (*row, to_json(threads_usage) if threads_usage else None)
        found = self._kept.get(key)
        if found is None:
            found = self._split(row, threads_usage or ())
            if found is None:  # a row whose JSON holds a stand-in's text elsewhere: render it whole
                active, duration = clock_figures(row, now)
                return to_json(session_json(columns(row), active, duration, threads_usage or ()))
            # The key holds the row's stored texts, the value about as much again as JSON.
            size = 2 * sum(len(p) for p in found.parts)
            if len(self._kept) >= self.size or self._held + size > self.max_bytes:
                self._kept.clear()
                self._versions.clear()
                self._held = 0
            self._kept[key] = found
            self._held += size
        if version is not None and threads_usage is None:
            if len(self._versions) >= self.size:
                self._versions.clear()
            self._versions[version] = found
        return found.at(now)

    def __len__(self) -> int:
        return len(self._kept)

    @staticmethod
    def _split(row: Row, threads_usage: Sequence[UsageTotals]) -> _Kept | None:
        rendered = to_json(session_json(columns(row), _ACTIVE, _DURATION, threads_usage))
        if rendered.count(_ACTIVE_TOKEN) != 2 or rendered.count(_DURATION_TOKEN) != 1:
            return None
        clock = _Clock.of(row)
        # Figures that cannot move are written in now (the same text a request would fill in).
        fixed = {
            _ACTIVE_TOKEN: to_json(clock.active(_EPOCH)) if clock.running_since is None else None,
            _DURATION_TOKEN: to_json(clock.duration(_EPOCH)) if clock.terminated_at is not None else None,
        }
        parts: list[bytes] = []
        is_active: list[bool] = []
        current = b""
        rest = rendered
        while True:
            a, d = rest.find(_ACTIVE_TOKEN), rest.find(_DURATION_TOKEN)
            if a < 0 and d < 0:
                parts.append(current + rest)
                return _Kept(tuple(parts), tuple(is_active), clock)
            at, token = (a, _ACTIVE_TOKEN) if d < 0 or (0 <= a < d) else (d, _DURATION_TOKEN)
            current += rest[:at]
            figure = fixed[token]
            if figure is None:
                parts.append(current)
                is_active.append(token is _ACTIVE_TOKEN)
                current = b""
            else:
                current += figure
            rest = rest[at + len(token) :]


# Any time: a figure that cannot move does not depend on it.
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
