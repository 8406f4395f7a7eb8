"""The catalogue itself: the Claude models a Managed Agents agent may name (SDK 2.14's
``BetaManagedAgentsModel``), newest first, paged by id as the hosted ``/v1/models`` is.

Every one of them can be served: by the real Messages API when a key is configured, and by the
offline model (which answers for any model id) otherwise. A release date is given where the id
carries one; the others use the epoch, as the API does for an unknown date.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Literal, cast

from app.catalog.schemas import ModelInfo, ModelPage
from app.errors import InvalidRequest, NotFound

_IDS = (
    "claude-fable-5-2",
    "claude-haiku-5-5",
    "claude-sonnet-5-5",
    "claude-opus-5-5",
    "claude-fable-5-1",
    "claude-sonnet-5",
    "claude-fable-5",
    "claude-opus-5",
    "claude-opus-4-8",
    "claude-opus-4-7",
    "claude-opus-4-6",
    "claude-sonnet-4-6",
    "claude-haiku-4-5",
    "claude-haiku-4-5-20251001",
    "claude-opus-4-5",
    "claude-opus-4-5-20251101",
    "claude-sonnet-4-5",
    "claude-sonnet-4-5-20250929",
)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_Line = Literal["haiku", "sonnet", "opus", "fable", "mythos"]


def _info(model_id: str) -> ModelInfo:
    parts = model_id.split("-")
    line = cast(_Line, parts[1])
    dated = re.fullmatch(r"\d{8}", parts[-1])
    version = ".".join(parts[2:-1] if dated else parts[2:])
    created = datetime.strptime(parts[-1], "%Y%m%d").replace(tzinfo=UTC) if dated else _EPOCH
    return ModelInfo(
        id=model_id, display_name=f"Claude {line.title()} {version}", created_at=created, line=line
    )


CATALOGUE: tuple[ModelInfo, ...] = tuple(_info(model_id) for model_id in _IDS)
_BY_ID = {model.id: model for model in CATALOGUE}


def get(model_id: str) -> ModelInfo:
    model = _BY_ID.get(model_id)
    if model is None:
        raise NotFound(f"model: {model_id}")
    return model


def _index(model_id: str, name: str) -> int:
    if model_id not in _BY_ID:
        raise InvalidRequest(f"{name}: unknown model id {model_id!r}")
    return CATALOGUE.index(_BY_ID[model_id])


def list_models(*, after_id: str | None, before_id: str | None, limit: int) -> ModelPage:
    """A page in catalogue order: after ``after_id``, or the ``limit`` models just before ``before_id``."""
    if after_id is not None and before_id is not None:
        raise InvalidRequest("after_id: cannot be combined with before_id")
    if before_id is not None:
        end = _index(before_id, "before_id")
        start = max(0, end - limit)
        shown, has_more = CATALOGUE[start:end], start > 0
    else:
        start = _index(after_id, "after_id") + 1 if after_id is not None else 0
        shown, has_more = CATALOGUE[start : start + limit], start + limit < len(CATALOGUE)
    return ModelPage(
        data=list(shown),
        has_more=has_more,
        first_id=shown[0].id if shown else None,
        last_id=shown[-1].id if shown else None,
    )
