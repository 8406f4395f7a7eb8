"""Request and response bodies of the cassette control endpoint."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field


class CassetteSelect(BaseModel):
    name: str = Field(min_length=1, max_length=400, description="Cassette name: <cassette_dir>/<name>.json")


class CassetteState(BaseModel):
    type: Literal["mas_cassette"] = "mas_cassette"
    name: str
    mode: Literal["record", "replay", "record_missing"]
    path: Path
    interactions: int = Field(description="Exchanges recorded in it so far.")
