"""/v1/models: list and retrieve."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from app.catalog import service
from app.catalog.schemas import ModelInfo, ModelPage

router = APIRouter(prefix="/models", tags=["models"])


@router.get("", response_model=ModelPage)
async def list_models(
    after_id: str | None = None,
    before_id: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 20,
) -> ModelPage:
    """List the models agents can run on."""
    return service.list_models(after_id=after_id, before_id=before_id, limit=limit)


@router.get("/{model_id}", response_model=ModelInfo)
async def retrieve_model(model_id: str) -> ModelInfo:
    """Retrieve a model."""
    return service.get(model_id)
