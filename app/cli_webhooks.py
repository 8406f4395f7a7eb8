"""`mas webhooks ...`: register endpoints and read their delivery log (on the database)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from app.cli_db import run_api_call as _run_api_call
from app.cli_db import with_database as _with_database
from app.cli_output import Json, emit
from app.config import get_settings

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from app.webhooks.schemas import WebhookDelivery, WebhookEndpoint

webhooks_cli = typer.Typer(help="Manage webhook endpoints and read their delivery log.", no_args_is_help=True)


@webhooks_cli.command("create")
def webhooks_create(
    url: str,
    event: Annotated[list[str], typer.Option(help="An event type to deliver (repeatable).")],
    name: Annotated[str, typer.Option(help="A label for the endpoint.")] = "",
) -> None:
    """Register an endpoint; prints `ID<TAB>SIGNING_SECRET` on the last line (the secret is shown once)."""
    from pydantic import ValidationError

    from app.db import migrate as migrations
    from app.webhooks import service
    from app.webhooks.schemas import WebhookEndpointCreate

    migrations.upgrade(get_settings().database_url, get_settings().storage_dir)
    try:
        params = WebhookEndpointCreate.model_validate({"url": url, "enabled_events": event, "name": name})
    except ValidationError as exc:
        typer.echo(f"error: {exc.errors()[0]['msg']} ({exc.errors()[0]['loc']})", err=True)
        raise typer.Exit(1) from None
    created = _run_api_call(_with_database(lambda db: service.create_endpoint(db, params), write=True))
    typer.echo(f"created {created.id} -> {created.url} ({', '.join(created.enabled_events)})")
    typer.echo(f"{created.id}\t{created.signing_secret}")


async def _all_endpoints(db: AsyncSession) -> list[WebhookEndpoint]:
    from app.webhooks import service

    endpoints: list[WebhookEndpoint] = []
    page: str | None = None
    while True:
        listed = await service.list_endpoints(db, limit=100, page=page)
        endpoints += listed.data
        if not (page := listed.next_page):
            return endpoints


@webhooks_cli.command("list")
def webhooks_list(as_json: Json = False) -> None:
    """List endpoints: id, state, URL, events, why it was disabled."""
    endpoints = _run_api_call(_with_database(_all_endpoints, write=False))
    emit(
        endpoints,
        as_json,
        lambda e: f"{e.id}\t{e.state}\t{e.url}\t{','.join(e.enabled_events)}\t{e.disabled_reason}",
    )


def _delivery_line(d: WebhookDelivery) -> str:
    answer = d.last_status_code if d.last_status_code is not None else (d.last_error or "-")
    created = d.created_at.strftime("%Y-%m-%dT%H:%M:%S")
    return f"{created}Z\t{d.event_type}\t{d.event_id}\t{d.status}\t{d.attempts}\t{answer}"


@webhooks_cli.command("deliveries")
def webhooks_deliveries(
    endpoint_id: str,
    limit: Annotated[int, typer.Option(help="How many, newest first.", min=1, max=1000)] = 50,
    as_json: Json = False,
) -> None:
    """The delivery log of an endpoint: time, event, status, attempts, last response."""
    from app.webhooks import service

    log = _with_database(
        lambda db: service.list_deliveries(db, endpoint_id, limit=limit, page=None), write=False
    )
    page = _run_api_call(log)
    emit(page.data, as_json, _delivery_line)


def _set_state(endpoint_id: str, state: str) -> None:
    from app.webhooks import service
    from app.webhooks.schemas import WebhookEndpointUpdate

    params = WebhookEndpointUpdate.model_validate({"state": state})
    _run_api_call(_with_database(lambda db: service.update_endpoint(db, endpoint_id, params), write=True))
    typer.echo(f"{endpoint_id} {state}")


@webhooks_cli.command("enable")
def webhooks_enable(endpoint_id: str) -> None:
    """Enable an endpoint (clears the reason it was disabled)."""
    _set_state(endpoint_id, "enabled")


@webhooks_cli.command("disable")
def webhooks_disable(endpoint_id: str) -> None:
    """Disable an endpoint; its pending deliveries are canceled."""
    _set_state(endpoint_id, "disabled")
