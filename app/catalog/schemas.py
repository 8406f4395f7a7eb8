"""Response schemas of /v1/models, after the SDK's ``BetaModelInfo`` and its ``SyncPage``."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel


class ModelInfo(BaseModel):
    type: Literal["model"] = "model"
    id: str
    display_name: str
    created_at: datetime
    lifecycle: Literal["active", "deprecated", "retired"] = "active"
    line: Literal["haiku", "sonnet", "opus", "fable", "mythos"] | None = None
    deprecated_at: datetime | None = None
    retires_at: datetime | None = None
    max_input_tokens: int | None = None
    max_tokens: int | None = None


class ModelPage(BaseModel):
    data: list[ModelInfo]
    has_more: bool
    first_id: str | None
    last_id: str | None
