"""Cassettes: recorded Messages API exchanges, one readable JSON file each.

Layout of ``<MAS_CASSETTE_DIR>/<name>.json`` (pretty-printed, one key per line, so it diffs well)::

    {
      "version": 1,
      "recorded_with": "mas 0.1.0",
      "interactions": [
        {
          "request": {"endpoint": "/v1/messages", "body": {<the normalised request>}},
          "response": {"status": 200, "events": [{"event": "message_start", "data": {…}}, …]}
        },
        {
          "request": {"endpoint": "/v1/messages/count_tokens", "body": {…}},
          "response": {"status": 200, "body": {"input_tokens": 12}}
        }
      ]
    }

A streamed answer keeps every server-sent event in order (``ping`` included), so a replay has the
original event structure; a JSON answer (or an error) keeps its body. No header is stored, and the
values of the request's credential headers are scrubbed from everything that is.

Versions: ``version`` is the layout's version. A cassette of an older version is migrated on load
(``MIGRATIONS``, one step per version) and written back in the current layout the next time it is
recorded to; one of a newer version is refused with an error that says so. Request bodies are
normalised again on load, so a newer mas's normalisation applies to old cassettes as well.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NotRequired, TypedDict

from pydantic import JsonValue

from app.agent_loop.cassettes import matching

VERSION = 1
# version n -> the same cassette in version n + 1
MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {}  # JSON boundary: cassette files
NAME = re.compile(r"^[A-Za-z0-9_.\-]+(?:/[A-Za-z0-9_.\-]+)*$")
REDACTED = "<redacted>"


class SseFrame(TypedDict):
    """One server-sent event as a cassette keeps it: its name and its data (parsed JSON, or the
    text when it is not JSON)."""

    event: str | None
    data: Any  # JSON boundary: a Messages API stream event, replayed as it was received


class RecordedRequest(TypedDict):
    endpoint: str
    body: dict[str, JsonValue]  # the Messages API request body


class RecordedResponse(TypedDict):
    status: int
    events: NotRequired[list[SseFrame]]  # a stream
    body: NotRequired[Any]  # a JSON answer, or a non-JSON one as text


class RecordedInteraction(TypedDict):
    """One request and its answer as a cassette file holds it."""

    request: RecordedRequest
    response: RecordedResponse


class CassetteError(Exception):
    """A cassette cannot be used: a bad name, an unreadable file, a newer layout."""


@dataclass
class Interaction:
    endpoint: str
    request: dict[str, JsonValue]  # the Messages API request body, normalised
    status: int
    events: list[SseFrame] | None = None
    body: Any = None  # a JSON answer (or a non-JSON one as text)

    def to_json(self) -> RecordedInteraction:
        response: RecordedResponse = {"status": self.status}
        if self.events is not None:
            response["events"] = self.events
        else:
            response["body"] = self.body
        return {"request": {"endpoint": self.endpoint, "body": self.request}, "response": response}

    @classmethod
    def from_json(cls, data: RecordedInteraction) -> Interaction:
        request, response = data["request"], data["response"]
        return cls(
            endpoint=str(request["endpoint"]),
            request=matching.normalise(request["body"]),
            status=int(response["status"]),
            events=response.get("events"),
            body=response.get("body"),
        )


@dataclass
class Cassette:
    name: str
    path: Path
    interactions: list[Interaction] = field(default_factory=list)
    _positions: dict[str, list[int]] = field(default_factory=dict)
    _served: dict[str, int] = field(default_factory=dict)

    @classmethod
    def open(cls, directory: Path, name: str, *, fresh: bool = False) -> Cassette:
        if not NAME.match(name) or ".." in name.split("/"):
            raise CassetteError(f"invalid cassette name {name!r}: use letters, digits, '._-' and '/'")
        cassette = cls(name=name, path=directory / f"{name}.json")
        for interaction in [] if fresh else _load(cassette.path):
            cassette._index(interaction)
        return cassette

    def _index(self, interaction: Interaction) -> None:
        self.interactions.append(interaction)
        request_key = matching.key(interaction.request, interaction.endpoint)
        self._positions.setdefault(request_key, []).append(len(self.interactions) - 1)

    def take(self, endpoint: str, normalised: dict[str, JsonValue]) -> Interaction | None:
        """The next recorded answer for this request: identical requests get their recordings in
        order, and the last one again once all were served."""
        request_key = matching.key(normalised, endpoint)
        positions = self._positions.get(request_key)
        if not positions:
            return None
        served = self._served.get(request_key, 0)
        self._served[request_key] = served + 1
        return self.interactions[positions[min(served, len(positions) - 1)]]

    def add(self, interaction: Interaction) -> None:
        """A newly recorded answer, counted as served (its request was just answered with it)."""
        self._index(interaction)
        request_key = matching.key(interaction.request, interaction.endpoint)
        self._served[request_key] = self._served.get(request_key, 0) + 1

    def explain_miss(self, endpoint: str, normalised: dict[str, JsonValue]) -> str:
        head = f"cassette {self.name!r} ({self.path}) has no recorded answer for this {endpoint} request"
        if not self.interactions:
            state = "is empty" if self.path.exists() else "does not exist"
            return f"{head}: the cassette {state}; record it with MAS_MODEL_BACKEND=record or record_missing"
        candidates = [(i, x.request) for i, x in enumerate(self.interactions) if x.endpoint == endpoint]
        found = matching.closest(candidates, normalised)
        if found is None:
            return f"{head}: no request to {endpoint} was recorded"
        position, differences = found
        return (
            f"{head}; the closest recorded request is interaction #{position + 1} of "
            f"{len(self.interactions)}, which differs at " + "; ".join(differences)
        )

    def render(self, secrets: list[str]) -> str:
        document = {
            "version": VERSION,
            "recorded_with": f"mas {_mas_version()}",
            "interactions": [interaction.to_json() for interaction in self.interactions],
        }
        text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
        return scrub(text, secrets)

    def write(self, text: str) -> None:
        """Atomically: a reader (or a crash) never sees half a cassette."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        temporary.write_text(text, encoding="utf-8")
        os.replace(temporary, self.path)


def _mas_version() -> str:
    try:
        return importlib.metadata.version("mas")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def scrub(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        if len(secret) >= 8:  # short values (like "Bearer") would mangle ordinary text
            text = text.replace(secret, REDACTED)
    return text


def _load(path: Path) -> list[Interaction]:
    if not path.exists():
        return []
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        document = migrate(document)
        return [Interaction.from_json(item) for item in document["interactions"]]
    except CassetteError:
        raise
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CassetteError(f"cassette {path} cannot be read: {exc}") from exc


def migrate(document: dict[str, Any]) -> dict[str, Any]:  # JSON boundary: a cassette file
    version = document.get("version")
    if not isinstance(version, int) or version < 1:
        raise CassetteError(f"not a mas cassette (version {version!r})")
    if version > VERSION:
        raise CassetteError(
            f"cassette version {version} was written by a newer mas; this one reads up to {VERSION}"
        )
    while version < VERSION:
        document = MIGRATIONS[version](document)
        version += 1
    return document
