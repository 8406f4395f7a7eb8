"""/v1/webhooks: webhook endpoints and their delivery log."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from app.api.deps import ReadSession, WriteSession
from app.webhooks import service
from app.webhooks.schemas import (
    NewWebhookEndpoint,
    SigningSecret,
    WebhookDeliveryPage,
    WebhookEndpoint,
    WebhookEndpointCreate,
    WebhookEndpointDeleted,
    WebhookEndpointPage,
    WebhookEndpointUpdate,
)

router = APIRouter(prefix="/webhooks", tags=["webhooks"])

Limit = Annotated[int, Query(ge=1, le=100)]


@router.post("", response_model=NewWebhookEndpoint)
async def create_endpoint(body: WebhookEndpointCreate, db: WriteSession) -> NewWebhookEndpoint:
    """Register a webhook endpoint; its signing secret is in this response only."""
    return await service.create_endpoint(db, body)


@router.get("", response_model=WebhookEndpointPage)
async def list_endpoints(db: ReadSession, limit: Limit = 20, page: str | None = None) -> WebhookEndpointPage:
    """List webhook endpoints, newest first."""
    return await service.list_endpoints(db, limit=limit, page=page)


@router.get("/{endpoint_id}", response_model=WebhookEndpoint)
async def retrieve_endpoint(endpoint_id: str, db: ReadSession) -> WebhookEndpoint:
    """Retrieve a webhook endpoint."""
    return await service.get_endpoint(db, endpoint_id)


@router.post("/{endpoint_id}", response_model=WebhookEndpoint)
async def update_endpoint(endpoint_id: str, body: WebhookEndpointUpdate, db: WriteSession) -> WebhookEndpoint:
    """Update an endpoint; `state` enables or disables it (enabling clears `disabled_reason`)."""
    return await service.update_endpoint(db, endpoint_id, body)


@router.delete("/{endpoint_id}", response_model=WebhookEndpointDeleted)
async def delete_endpoint(endpoint_id: str, db: WriteSession) -> WebhookEndpointDeleted:
    """Delete an endpoint and its delivery log."""
    return await service.delete_endpoint(db, endpoint_id)


@router.post("/{endpoint_id}/regenerate_signing_secret", response_model=SigningSecret)
async def regenerate_signing_secret(endpoint_id: str, db: WriteSession) -> SigningSecret:
    """Replace the signing secret; deliveries are signed with the new one from now on."""
    return await service.regenerate_secret(db, endpoint_id)


@router.get("/{endpoint_id}/deliveries", response_model=WebhookDeliveryPage)
async def list_deliveries(
    endpoint_id: str, db: ReadSession, limit: Limit = 20, page: str | None = None
) -> WebhookDeliveryPage:
    """The endpoint's delivery log, newest first: status, attempts, last response."""
    return await service.list_deliveries(db, endpoint_id, limit=limit, page=page)
