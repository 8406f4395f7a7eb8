"""The shapes of the dream row's JSON columns (``app.db.models.Dream``), as stored and shown.

No SQLAlchemy here, so the dreams schemas use them too (typing_extensions' TypedDict: pydantic
validates them and refuses typing's on Python 3.11).
"""

from __future__ import annotations

from typing import Literal, NotRequired

from typing_extensions import TypedDict


class DreamModel(TypedDict):
    id: str
    speed: Literal["standard", "fast"]


class DreamOutputBehavior(TypedDict):
    """``{type: "create_new"}``, or ``{type: "update_existing", memory_store_id}``."""

    type: Literal["create_new", "update_existing"]
    memory_store_id: NotRequired[str]


class DreamErrorJson(TypedDict):
    type: str
    message: str


class DreamUsageTotals(TypedDict):
    input_tokens: int
    output_tokens: int
    cache_creation_input_tokens: int
    cache_read_input_tokens: int
