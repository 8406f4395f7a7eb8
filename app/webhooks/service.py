"""Webhooks: endpoints, and the durable outbox their events go through.

`emit` writes one delivery per matching enabled endpoint in the caller's transaction, so an event
is delivered if and only if the change that caused it committed. The dispatcher
(`app.webhooks.dispatcher`) sends due deliveries, at least once, signed the Standard Webhooks way
that `client.beta.webhooks.unwrap` verifies. A failed attempt is retried with jittered exponential
backoff, each wait between `webhook_retry_base_seconds` and `webhook_retry_max_seconds`, until
`webhook_max_attempts`; a redirect disables the endpoint at once (deliveries go only to the
configured URL), and `webhook_disable_after_failures` failed attempts in a row disable it
too. Disabling an endpoint cancels its pending deliveries: events are never delivered late to an
endpoint that was off when they were due.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import random
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from sqlalchemy.ext.asyncio import AsyncSession

from app.db.base import utcnow
from app.db.engine import wake_after_commit
from app.db.models import WebhookDelivery as DeliveryRow
from app.db.models import WebhookEndpoint as EndpointRow
from app.errors import InvalidRequest, NotFound
from app.ids import new_id
from app.shared.pagination import decode_cursor, decode_time_key, newest_first_page
from app.webhooks import repository
from app.webhooks.schemas import (
    EVENT_TYPES,
    NewWebhookEndpoint,
    SigningSecret,
    WebhookDelivery,
    WebhookDeliveryPage,
    WebhookEndpoint,
    WebhookEndpointCreate,
    WebhookEndpointDeleted,
    WebhookEndpointPage,
    WebhookEndpointUpdate,
)

# A self-hosted server has one organization and one workspace; payloads name them with these ids.
ORGANIZATION_ID = "org_mas_local"
WORKSPACE_ID = "wrkspc_mas_default"
CLAIM_SECONDS = 60.0  # a delivery being sent is not due again before this (a crashed sender's retry)
WAKE_TOPIC = "webhooks"  # the notifier's topic that wakes the senders (a delivery was queued)


# --- endpoints ---------------------------------------------------------------------------------


def _view(row: EndpointRow) -> WebhookEndpoint:
    return WebhookEndpoint(
        id=row.id,
        url=row.url,
        name=row.name,
        description=row.description,
        enabled_events=list(row.enabled_events),
        state="enabled" if row.state == "enabled" else "disabled",
        disabled_reason=row.disabled_reason,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _check_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidRequest("url: must be an absolute http:// or https:// URL")
    if parts.username or parts.password:
        raise InvalidRequest("url: must not carry credentials")
    if "\x00" in url:
        raise InvalidRequest("url: NUL characters are not allowed")
    return url


def _new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


async def create_endpoint(db: AsyncSession, params: WebhookEndpointCreate) -> NewWebhookEndpoint:
    now = utcnow()
    row = EndpointRow(
        id=new_id("whep"),
        url=_check_url(params.url),
        name=params.name,
        description=params.description,
        enabled_events=sorted(set(params.enabled_events)),
        state="enabled",
        disabled_reason="",
        signing_secret=_new_secret(),
        consecutive_failures=0,
        created_at=now,
        updated_at=now,
    )
    repository.add(db, row)
    await db.flush()
    return NewWebhookEndpoint(**_view(row).model_dump(), signing_secret=row.signing_secret)


async def _endpoint(db: AsyncSession, endpoint_id: str, *, for_update: bool = False) -> EndpointRow:
    row = await repository.get_endpoint(db, endpoint_id, for_update=for_update)
    if row is None:
        raise NotFound(f"Webhook endpoint {endpoint_id} not found")
    return row


async def get_endpoint(db: AsyncSession, endpoint_id: str) -> WebhookEndpoint:
    return _view(await _endpoint(db, endpoint_id))


async def update_endpoint(
    db: AsyncSession, endpoint_id: str, params: WebhookEndpointUpdate
) -> WebhookEndpoint:
    row = await _endpoint(db, endpoint_id, for_update=True)
    now = utcnow()
    if params.url is not None:
        row.url = _check_url(params.url)
    if params.name is not None:
        row.name = params.name
    if params.description is not None:
        row.description = params.description
    if params.enabled_events:  # an empty list leaves the set unchanged, as on the hosted API
        row.enabled_events = sorted(set(params.enabled_events))
    if params.state == "enabled" and row.state != "enabled":
        row.state, row.disabled_reason, row.consecutive_failures = "enabled", "", 0
    elif params.state == "disabled" and row.state != "disabled":
        row.state, row.disabled_reason = "disabled", ""
        await repository.cancel_pending(db, row.id, now, "the endpoint was disabled")
    row.updated_at = now
    await db.flush()
    return _view(row)


async def regenerate_secret(db: AsyncSession, endpoint_id: str) -> SigningSecret:
    row = await _endpoint(db, endpoint_id, for_update=True)
    row.signing_secret = _new_secret()
    row.updated_at = utcnow()
    await db.flush()
    return SigningSecret(signing_secret=row.signing_secret)


async def delete_endpoint(db: AsyncSession, endpoint_id: str) -> WebhookEndpointDeleted:
    await repository.delete_endpoint(db, await _endpoint(db, endpoint_id, for_update=True))
    await db.flush()
    return WebhookEndpointDeleted(id=endpoint_id)


async def list_endpoints(db: AsyncSession, *, limit: int, page: str | None) -> WebhookEndpointPage:
    after = decode_time_key(decode_cursor(page, "desc"))
    rows, next_page = newest_first_page(await repository.endpoints_page(db, after, limit + 1), limit)
    return WebhookEndpointPage(data=[_view(r) for r in rows], next_page=next_page)


def _delivery_view(row: DeliveryRow) -> WebhookDelivery:
    return WebhookDelivery(
        id=row.id,
        endpoint_id=row.endpoint_id,
        event_id=row.event_id,
        event_type=row.event_type,
        status=row.status,
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at if row.status == "pending" else None,
        last_attempt_at=row.last_attempt_at,
        last_status_code=row.last_status_code,
        last_error=row.last_error,
        created_at=row.created_at,
        delivered_at=row.delivered_at,
    )


async def list_deliveries(
    db: AsyncSession, endpoint_id: str, *, limit: int, page: str | None
) -> WebhookDeliveryPage:
    await _endpoint(db, endpoint_id)
    after = decode_time_key(decode_cursor(page, "desc"))
    rows, next_page = newest_first_page(
        await repository.deliveries_page(db, endpoint_id, after, limit + 1), limit
    )
    return WebhookDeliveryPage(data=[_delivery_view(r) for r in rows], next_page=next_page)


# --- emitting ----------------------------------------------------------------------------------


def payload(event_id: str, event_type: str, object_id: str, created_at: datetime) -> str:
    """The thin payload: what happened to which object; the receiver fetches the rest."""
    body = {
        "type": "event",
        "id": event_id,
        "created_at": created_at.isoformat().replace("+00:00", "Z"),
        "data": {
            "type": event_type,
            "id": object_id,
            "organization_id": ORGANIZATION_ID,
            "workspace_id": WORKSPACE_ID,
        },
    }
    return json.dumps(body, separators=(",", ":"))


async def emit(db: AsyncSession, event_type: str, object_id: str) -> None:
    """Queue ``event_type`` about ``object_id`` for every enabled endpoint that wants it."""
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown webhook event type {event_type!r}")
    endpoints = [e for e in await repository.enabled_endpoints(db) if event_type in e.enabled_events]
    if not endpoints:
        return
    now = utcnow()
    event_id = new_id("wevt")
    body = payload(event_id, event_type, object_id, now)
    for endpoint in endpoints:
        repository.add(
            db,
            DeliveryRow(
                id=new_id("whdl"),
                endpoint_id=endpoint.id,
                event_id=event_id,
                event_type=event_type,
                payload=body,
                status="pending",
                attempts=0,
                next_attempt_at=now,
                created_at=now,
            ),
        )
    await db.flush()
    wake_after_commit(db, WAKE_TOPIC)


# --- the dispatcher's bookkeeping ----------------------------------------------------------------


@dataclass(frozen=True)
class Send:
    """One attempt to make: what to POST where, signed with which secret."""

    delivery_id: str
    event_id: str
    url: str
    secret: str
    payload: str


@dataclass(frozen=True)
class Outcome:
    status_code: int | None
    error: str | None

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300

    @property
    def redirected(self) -> bool:
        return self.status_code is not None and 300 <= self.status_code < 400


async def seconds_until_due(db: AsyncSession) -> float | None:
    """How long until a pending delivery is due (0 or less: one is due now); None: none pending."""
    due = await repository.next_attempt_at(db)
    return None if due is None else (due - utcnow()).total_seconds()


async def claim_due(db: AsyncSession, limit: int) -> list[Send]:
    """Take due deliveries: each is not due again for `CLAIM_SECONDS`, so a sender that dies
    mid-attempt only delays it (at-least-once)."""
    now = utcnow()
    sends = []
    for row in await repository.take_due(db, now, limit):
        endpoint = await repository.get_endpoint(db, row.endpoint_id)
        if endpoint is None or endpoint.state != "enabled":
            row.status, row.last_error = "canceled", "the endpoint is disabled"
            continue
        row.attempts += 1
        row.last_attempt_at = now
        row.next_attempt_at = now + timedelta(seconds=CLAIM_SECONDS)
        sends.append(Send(row.id, row.event_id, endpoint.url, endpoint.signing_secret, row.payload))
    await db.flush()
    return sends


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int
    base_seconds: float
    max_seconds: float
    disable_after_failures: int

    def delay(self, attempts: int) -> float:
        """The wait after the ``attempts``-th failed attempt: exponential and jittered, always
        within ``[base_seconds, max_seconds]`` (hosted: 5-120 s). After attempt n it is drawn
        from ``[ceiling / 2, ceiling]`` with ``ceiling = base * 2**n`` capped at the maximum, the
        floor never below the base: 5-10 s, then 10-20 s, ..., then 60-120 s."""
        ceiling = min(self.max_seconds, self.base_seconds * 2**attempts)
        floor = min(ceiling, max(self.base_seconds, ceiling / 2))
        return random.uniform(floor, ceiling)


async def record(db: AsyncSession, send: Send, outcome: Outcome, policy: RetryPolicy) -> None:
    row = await repository.get_delivery(db, send.delivery_id)
    if row is None or row.status != "pending":
        return
    endpoint = await repository.get_endpoint(db, row.endpoint_id, for_update=True)
    now = utcnow()
    row.last_status_code, row.last_error = outcome.status_code, outcome.error
    if outcome.delivered:
        row.status, row.delivered_at = "delivered", now
        if endpoint is not None:
            endpoint.consecutive_failures = 0
    else:
        _failed(row, now, policy)
        if endpoint is not None:
            await _count_failure(db, endpoint, outcome, now, policy)
    await db.flush()


def _failed(row: DeliveryRow, now: datetime, policy: RetryPolicy) -> None:
    if row.attempts >= policy.max_attempts:
        row.status = "failed"
    else:
        row.next_attempt_at = now + timedelta(seconds=policy.delay(row.attempts))


async def _count_failure(
    db: AsyncSession, endpoint: EndpointRow, outcome: Outcome, now: datetime, policy: RetryPolicy
) -> None:
    endpoint.consecutive_failures += 1
    reason = ""
    if outcome.redirected:
        reason = f"the endpoint answered with a redirect ({outcome.status_code}); deliveries never follow one"
    elif endpoint.consecutive_failures >= policy.disable_after_failures:
        reason = f"{endpoint.consecutive_failures} delivery attempts in a row failed"
    if reason and endpoint.state == "enabled":
        endpoint.state, endpoint.disabled_reason, endpoint.updated_at = "disabled", reason, now
        await repository.cancel_pending(db, endpoint.id, now, "the endpoint was disabled: " + reason)


def signature_headers(send: Send, timestamp: int) -> dict[str, str]:
    """Standard Webhooks: `v1,` + base64 HMAC-SHA256 of `id.timestamp.body` under the secret."""
    key = base64.b64decode(send.secret.removeprefix("whsec_"))
    signed = f"{send.event_id}.{timestamp}.{send.payload}".encode()
    signature = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    return {
        "webhook-id": send.event_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": f"v1,{signature}",
        "content-type": "application/json",
        "user-agent": "mas-webhooks/1",
    }


async def pending_count(db: AsyncSession) -> int:
    """Deliveries not yet delivered, failed or canceled (metrics)."""
    return await repository.count_pending(db)
