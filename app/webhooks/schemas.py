"""Schemas of /v1/webhooks (workspace webhook endpoints) and of the payloads they receive.

The endpoint shape follows the SDK's organization webhook endpoint (`BetaOrganizationWebhookEndpoint`);
the payload is the thin event `BetaWebhookEvent` that `client.beta.webhooks.unwrap` parses.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

# The workspace events this server emits (a subset of the SDK's `BetaWebhookEventData` union).
EventType = Literal[
    "session.created",
    "session.status_run_started",
    "session.status_idled",
    "session.requires_action",
    "session.status_rescheduled",
    "session.status_terminated",
    "session.updated",
    "session.outcome_evaluation_ended",
    "session.archived",
    "session.deleted",
    "deployment.created",
    "deployment.updated",
    "deployment.archived",
    "deployment.paused",
    "deployment.unpaused",
    "deployment_run.succeeded",
    "deployment_run.failed",
]
EVENT_TYPES: tuple[str, ...] = EventType.__args__  # type: ignore[attr-defined]
State = Literal["enabled", "disabled"]
Url = Annotated[str, Field(min_length=1, max_length=2048)]


class Params(BaseModel):
    model_config = ConfigDict(extra="ignore")


class WebhookEndpointCreate(Params):
    url: Url
    enabled_events: Annotated[list[EventType], Field(min_length=1)]
    name: Annotated[str, Field(max_length=256)] = ""
    description: Annotated[str, Field(max_length=2048)] = ""


class WebhookEndpointUpdate(Params):
    url: Url | None = None
    enabled_events: list[EventType] | None = None
    name: Annotated[str, Field(max_length=256)] | None = None
    description: Annotated[str, Field(max_length=2048)] | None = None
    state: State | None = None


class WebhookEndpoint(BaseModel):
    type: Literal["webhook_endpoint"] = "webhook_endpoint"
    id: str
    url: str
    name: str
    description: str
    enabled_events: list[str]
    state: State
    disabled_reason: str
    created_at: datetime
    updated_at: datetime


class NewWebhookEndpoint(WebhookEndpoint):
    signing_secret: str = Field(description="Shown only here and by regenerate_signing_secret.")


class SigningSecret(BaseModel):
    signing_secret: str


class WebhookEndpointPage(BaseModel):
    data: list[WebhookEndpoint]
    next_page: str | None


class WebhookEndpointDeleted(BaseModel):
    type: Literal["webhook_endpoint_deleted"] = "webhook_endpoint_deleted"
    id: str


class WebhookDelivery(BaseModel):
    """One entry of an endpoint's delivery log."""

    type: Literal["webhook_delivery"] = "webhook_delivery"
    id: str
    endpoint_id: str
    event_id: str
    event_type: str
    status: Literal["pending", "delivered", "failed", "canceled"]
    attempts: int
    next_attempt_at: datetime | None
    last_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None


class WebhookDeliveryPage(BaseModel):
    data: list[WebhookDelivery]
    next_page: str | None
