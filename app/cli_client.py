"""The HTTP side of `mas` commands that are clients of a running server (files, sessions tail):
where the server is, the key, and API errors shown as the API's message with exit status 1."""

from __future__ import annotations

from typing import Annotated, Any

import httpx
import typer

from app.config import get_settings

Url = Annotated[str | None, typer.Option(help="Server URL (default: http://MAS_HOST:MAS_PORT).")]
Key = Annotated[str | None, typer.Option(help="API key (default: the first of MAS_API_KEYS).")]


def api_client(url: str | None, api_key: str | None, *, read_timeout: float | None = 600) -> httpx.Client:
    settings = get_settings()
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
    base = url or f"http://{host}:{settings.port}"
    key = api_key or (settings.api_keys[0] if settings.api_keys else None)
    if key is None:
        raise typer.BadParameter("no API key: pass --api-key or set MAS_API_KEYS")
    headers = {"x-api-key": key, "anthropic-version": "2023-06-01"}
    timeout = httpx.Timeout(600, connect=10, read=read_timeout)
    return httpx.Client(base_url=base.rstrip("/"), headers=headers, timeout=timeout)


def error_message(response: httpx.Response) -> str:
    try:
        return str(response.json()["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return response.text[:500]


def checked(response: httpx.Response) -> Any:
    """The JSON body, or the API's error message on stderr and exit status 1."""
    if response.status_code >= 400:
        typer.echo(f"error {response.status_code}: {error_message(response)}", err=True)
        raise typer.Exit(1)
    return response.json()
