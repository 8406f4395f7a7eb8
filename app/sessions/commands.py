"""`mas sessions tail SESSION`: follow a session live in the terminal, as an observer (it never
moves the session's replay watermark), with the last few events of its history first."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from typing import Annotated

import httpx
import typer

from app.cli_client import Key, Url, api_client, checked, error_message
from app.sessions.tail import Frame, Renderer, is_preview

sessions_cli = typer.Typer(help="Watch the sessions of a running mas server.", no_args_is_help=True)

END_TYPES = frozenset({"session.status_terminated", "session.deleted"})
MAX_BACKOFF = 8.0
# Heartbeats come every MAS_STREAM_HEARTBEAT_SECONDS (10 s by default): a minute of silence is a
# dead connection, resumed after the last event shown.
READ_TIMEOUT = 60.0


class _Tail:
    def __init__(self, client: httpx.Client, session_id: str, as_json: bool) -> None:
        self.client = client
        self.session_id = session_id
        self.as_json = as_json
        self.renderer = Renderer()
        self.last_id: str | None = None

    def show(self, event: Frame) -> bool:
        """Print one event; True when the session has ended."""
        if not is_preview(event) and event.get("id"):  # previews have none: never replayed
            self.last_id = event["id"]
        if self.as_json:
            typer.echo(json.dumps(event, ensure_ascii=False))
        else:
            sys.stdout.write(self.renderer.feed(event))
            sys.stdout.flush()
        return event["type"] in END_TYPES

    def history(self, lines: int) -> bool:
        """The last `lines` events; True when the session has already ended. The newest event is
        always read: the stream resumes right after it."""
        path = f"/v1/sessions/{self.session_id}/events"
        page = checked(self.client.get(path, params={"order": "desc", "limit": max(lines, 1)}))
        newest = list(reversed(page["data"]))
        for event in newest[-lines:] if lines else []:
            self.show(event)
        if newest:
            self.last_id = str(newest[-1]["id"])
        return bool(newest) and newest[-1].get("type") in END_TYPES

    def follow(self) -> None:
        """The stream, reconnected after a drop right after the last event shown, until the end."""
        delay = 0.5
        while True:
            try:
                for event in self._frames():
                    delay = 0.5
                    if self.show(event):
                        return
            except httpx.TransportError as exc:
                typer.echo(f"(connection lost: {exc.__class__.__name__}; reconnecting)", err=True)
            time.sleep(delay)
            delay = min(delay * 2, MAX_BACKOFF)

    def _frames(self) -> Iterator[Frame]:
        headers = {"accept": "text/event-stream", "x-mas-observer": "1"}
        if self.last_id:
            headers["last-event-id"] = self.last_id
        path = f"/v1/sessions/{self.session_id}/events/stream"
        # Text shows an answer as it is written; --json prints the log's events only.
        params = {} if self.as_json else {"event_deltas[]": "agent.message"}
        with self.client.stream("GET", path, headers=headers, params=params) as response:
            if response.status_code >= 400:
                response.read()
                typer.echo(f"error {response.status_code}: {error_message(response)}", err=True)
                raise typer.Exit(1)
            data: list[str] = []
            for line in response.iter_lines():
                if line == "":
                    if data:
                        yield json.loads("\n".join(data))
                    data = []
                elif line.startswith("data:"):
                    data.append(line[5:].removeprefix(" "))


@sessions_cli.command("tail")
def tail(
    session_id: str,
    lines: Annotated[
        int, typer.Option("--lines", "-n", min=0, help="How many events of the history to show first.")
    ] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="Print each raw event as one JSON line.")] = False,
    url: Url = None,
    api_key: Key = None,
) -> None:
    """Follow a session live: messages, tool calls, errors, model request timing. Ends when the
    session is terminated or deleted, or on Ctrl-C."""
    try:
        with api_client(url, api_key, read_timeout=READ_TIMEOUT) as client:
            follower = _Tail(client, session_id, as_json)
            if not follower.history(lines):
                if not as_json:
                    typer.echo(f"-- following {session_id} (Ctrl-C to stop)")
                follower.follow()
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
