"""The JSON columns of deployments and their runs, typed (TypedDicts: plain dicts at run time).

No SQLAlchemy here, so the response schemas can name them too.
"""

from __future__ import annotations

from typing import Literal, NotRequired

from typing_extensions import TypedDict


class RunError(TypedDict):
    """Why a firing made no session (``DeploymentRun.error``)."""

    type: str
    message: str


class ErrorKind(TypedDict):
    type: str


class ManualPause(TypedDict):
    type: Literal["manual"]


class ErrorPause(TypedDict):
    """Paused by a scheduled firing that failed for good (the run has the message)."""

    type: Literal["error"]
    error: ErrorKind


PausedReason = ManualPause | ErrorPause


class TriggerContext(TypedDict):
    type: str  # manual | schedule
    scheduled_at: NotRequired[str]
