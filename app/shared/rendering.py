"""A response body rendered once: the bytes FastAPI would send for a `response_model` (the
model's own serializer, by alias), produced by the service so an endpoint returns them as they are."""

from __future__ import annotations

from pydantic import BaseModel


def model_json(model: BaseModel) -> bytes:
    """``model`` as FastAPI serialises a response model: compact JSON, field aliases."""
    return model.__pydantic_serializer__.to_json(model, by_alias=True)
