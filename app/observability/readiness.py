"""Readiness: is this process able to do its work right now, and if not, what is wrong.

Each probe answers ``None`` (fine) or a sentence naming the problem. Probes run concurrently,
each within ``PROBE_TIMEOUT_SECONDS``, so a hung dependency makes `/ready` answer 503 in bounded
time instead of hanging the probe that asked.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal, TypedDict

PROBE_TIMEOUT_SECONDS = 5.0

Probe = Callable[[], Awaitable[str | None]]


@dataclass(frozen=True)
class Report:
    """``checks``: each probe's name -> ``"ok"`` or its problem; ``failed``: the names that failed."""

    checks: dict[str, str]

    @property
    def failed(self) -> list[str]:
        return [name for name, result in self.checks.items() if result != "ok"]

    @property
    def ready(self) -> bool:
        return not self.failed

    def body(self) -> ReadinessBody:
        status: Literal["ready", "not_ready"] = "ready" if self.ready else "not_ready"
        return {"status": status, "checks": self.checks, "failed": self.failed}


class ReadinessBody(TypedDict):
    status: Literal["ready", "not_ready"]
    checks: dict[str, str]
    failed: list[str]


@dataclass
class Readiness:
    """The probes of this process, registered by whatever the process runs (in start order)."""

    probes: dict[str, Probe] = field(default_factory=dict)
    timeout_seconds: float = PROBE_TIMEOUT_SECONDS

    def add(self, name: str, probe: Probe) -> None:
        self.probes[name] = probe

    async def check(self) -> Report:
        names = list(self.probes)
        results = await asyncio.gather(*(self._run(self.probes[name]) for name in names))
        return Report(dict(zip(names, results, strict=True)))

    async def _run(self, probe: Probe) -> str:
        try:
            problem = await asyncio.wait_for(probe(), self.timeout_seconds)
        except TimeoutError:
            return f"did not answer within {self.timeout_seconds:g} s"
        except Exception as exc:  # a probe that breaks is a failed check, named, never a 500
            return describe(exc)
        return "ok" if problem is None else problem


def sync_probe(problem: Callable[[], str | None]) -> Probe:
    """A probe from a plain function that answers at once (state the component keeps itself)."""

    async def probe() -> str | None:
        return problem()

    return probe


def describe(exc: BaseException) -> str:
    """An exception as one line: its type and the first line of its message."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
