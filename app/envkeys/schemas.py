"""Schemas of environment keys (`/v1/environments/{id}/keys`)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field


class EnvironmentKeyCreate(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: Annotated[str, Field(min_length=1, max_length=256)] = "default"


class EnvironmentKey(BaseModel):
    type: Literal["environment_key"] = "environment_key"
    id: str
    environment_id: str
    name: str
    hint: str
    created_at: datetime
    revoked_at: datetime | None
    key: str | None = Field(None, description="The key itself: only in the response that created it.")


class EnvironmentKeyPage(BaseModel):
    data: list[EnvironmentKey]
    next_page: str | None
