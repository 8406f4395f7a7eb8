"""Cron schedules: 5-field POSIX expressions in an IANA time zone, computed with croniter.

Slots are computed in the schedule's zone (so "0 9 * * *" stays 09:00 local across DST; a local
time that does not exist fires at the next one that does) and returned in UTC. Each deployment
fires at its slot plus a fixed per-deployment jitter: up to 15 % of the schedule's interval,
between 5 s and 9 min as on the hosted service, and never more than `max_jitter`.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from croniter import croniter

from app.errors import InvalidRequest

_NAMES = {"jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"} | {
    "sun",
    "mon",
    "tue",
    "wed",
    "thu",
    "fri",
    "sat",
}
_TOKEN = re.compile(r"[A-Za-z]+")
_ALLOWED = re.compile(r"^[0-9A-Za-z*,/\-]+$")


def _zone(timezone: str) -> ZoneInfo:
    if timezone not in available_timezones() and timezone != "UTC":
        raise InvalidRequest(f"schedule.timezone: {timezone!r} is not an IANA time zone")
    try:
        return ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidRequest(f"schedule.timezone: {timezone!r} is not an IANA time zone") from None


def validate(expression: str, timezone: str) -> None:
    """A 5-field POSIX expression (day-of-week 0-7) in a known zone; extended syntax is a 400."""
    fields = expression.split()
    if len(fields) != 5:
        raise InvalidRequest(
            "schedule.expression: expected 5 fields (minute hour day-of-month month day-of-week); "
            "seconds or year fields and @shortcuts are not supported"
        )
    for field in fields:
        names = {t.lower() for t in _TOKEN.findall(field)}
        if not _ALLOWED.match(field) or not names <= _NAMES:
            raise InvalidRequest(
                f"schedule.expression: {field!r} is not a POSIX cron field (L, W, # and ? are not supported)"
            )
    if not croniter.is_valid(expression):
        raise InvalidRequest(f"schedule.expression: {expression!r} is not a valid cron expression")
    _zone(timezone)


def slots_after(expression: str, timezone: str, after: datetime, count: int) -> list[datetime]:
    """The next ``count`` slots strictly after ``after``, in UTC."""
    it = croniter(expression, after.astimezone(_zone(timezone)))
    return [it.get_next(datetime).astimezone(UTC) for _ in range(count)]


def latest_at_or_before(expression: str, timezone: str, moment: datetime) -> datetime:
    """The latest slot at or before ``moment``, in UTC."""
    it = croniter(expression, (moment + timedelta(microseconds=1)).astimezone(_zone(timezone)))
    return it.get_prev(datetime).astimezone(UTC)


def jitter_seconds(
    deployment_id: str, expression: str, timezone: str, now: datetime, max_jitter: float
) -> float:
    """A fixed per-deployment offset: a share of the jitter window chosen by the id's hash."""
    if max_jitter <= 0:
        return 0.0
    first, second = slots_after(expression, timezone, now, 2)
    window = min(max(0.15 * (second - first).total_seconds(), 5.0), 540.0, max_jitter)
    share = int.from_bytes(hashlib.sha256(deployment_id.encode()).digest()[:4], "big") / 2**32
    return round(window * share, 3)
