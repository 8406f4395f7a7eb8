"""The hot reads, answered before FastAPI's router: a pure ASGI layer for a few GET routes.

FastAPI spends more on a small GET than the read itself: matching the path against every route
of the nested routers, resolving the dependency tree, validating the returned model against
`response_model` and serialising it again. For the reads a client polls (GET an agent or an
environment, the sessions list, the events list) this layer does the same checks directly and
sends the bytes that the route's own renderer produces:

* the same route, registered as a `FastRead` next to its FastAPI route, whose endpoint calls the
  same `render` function (so both paths send identical bytes, and the FastAPI route keeps the
  OpenAPI schema);
* the same checks in the same order as `app.api.guard.v1_checks`: the credential (401), the rate
  limit (429); the URL's NUL check and every parameter error are left to FastAPI (below);
* the same request id, metrics label, access log and error envelope (the request-id middleware
  wraps this layer; an `ApiError` of the renderer is rendered by `error_response`).

Anything unusual is handed to FastAPI unchanged, which answers it as before: a request with a
body, a query parameter the fast route does not parse (or a value it would not accept as is), a
NUL in the URL, a credential that is not an API key known without a database read (a stored key
is looked up, and cached, by the FastAPI path first), a path that does not match exactly.

A session's SSE stream is opened here too (a `FastStream`: what every client of a turn opens):
the same checks, then the route's own `open` and the same `EventStream`; a stream with a query
(`event_deltas`) or an `x-mas-observer` header goes to FastAPI.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from app.api.auth import KeyCache, known_principal, presented_key
from app.api.errors import error_response
from app.api.ratelimit import RateLimiter, spend
from app.api.scopes import WORKER_ONLY
from app.api.sse import EventStream
from app.config import Settings
from app.db.engine import Database
from app.errors import ApiError
from app.observability.context import session_id_var

# Query parameters parsed into keyword arguments of `render`; None: let FastAPI answer.
QueryArgs = dict[str, int | str | None]
QueryParser = Callable[[Mapping[str, str]], QueryArgs | None]
Renderer = Callable[..., Awaitable[bytes]]
# (database, notifier, settings, **path_params, last_event_id=...) -> the stream's frames
StreamOpener = Callable[..., Awaitable[AsyncIterator[bytes]]]
_PARAM = re.compile(r"\{(\w+)\}")
_JSON_HEADERS = (b"content-type", b"application/json")


def no_query(query: Mapping[str, str]) -> QueryArgs | None:
    return {} if not query else None


def int_value(raw: str, low: int, high: int) -> int | None:
    """A plain decimal within bounds, else None (FastAPI then parses it, or refuses it)."""
    if not raw.isascii() or not raw.isdigit() or (len(raw) > 1 and raw[0] == "0"):
        return None
    value = int(raw)
    return value if low <= value <= high else None


def page_query(max_limit: int, default_limit: int, default_order: str) -> QueryParser:
    """A list's `limit`, `page` and `order` (nothing else)."""

    def parse(query: Mapping[str, str]) -> QueryArgs | None:
        if not query.keys() <= {"limit", "page", "order"}:
            return None
        limit = int_value(query["limit"], 1, max_limit) if "limit" in query else default_limit
        order = query.get("order", default_order)
        if limit is None or order not in ("asc", "desc"):
            return None
        return {"limit": limit, "page": query.get("page"), "order": order}

    return parse


def json_response(body: bytes) -> Response:
    """A body rendered by a service, sent as it is (the route's `response_model` documents it)."""
    return Response(body, media_type="application/json")


@dataclass(frozen=True)
class FastRead:
    """A GET route (its template under /v1, as FastAPI declares it) served by ``render(db,
    **path_params, **parse(query))``."""

    path: str
    render: Renderer
    parse: QueryParser = no_query
    pattern: re.Pattern[str] = field(init=False, compare=False)

    def __post_init__(self) -> None:
        if ("GET", self.path) in WORKER_ONLY:
            raise ValueError(f"{self.path} takes a worker credential: not a fast read")
        parts = _PARAM.split(self.path)  # literal, name, literal, name, ..., literal
        regex = "".join(re.escape(p) if i % 2 == 0 else f"(?P<{p}>[^/]+)" for i, p in enumerate(parts))
        object.__setattr__(self, "pattern", re.compile(f"/v1{regex}"))


@dataclass(frozen=True)
class FastStream:
    """A GET route (its template under /v1) answered with the SSE stream ``open`` returns."""

    path: str
    open: StreamOpener
    pattern: re.Pattern[str] = field(init=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "pattern", FastRead(self.path, _no_render).pattern)


async def _no_render(*_: object) -> bytes:
    raise NotImplementedError


@dataclass(frozen=True)
class _Route:
    """What the metrics label and the access log read from ``scope["route"]``."""

    path: str


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return None


def _has_body(scope: Scope) -> bool:
    length = _header(scope, b"content-length")
    return (length is not None and length.strip() not in (b"", b"0")) or (
        _header(scope, b"transfer-encoding") is not None
    )


def _query(raw: bytes) -> dict[str, str] | None:
    """The query as a dict; None when a key repeats (FastAPI's list handling decides then)."""
    if not raw:
        return {}
    pairs = parse_qsl(raw.decode("latin-1"), keep_blank_values=True)
    query = dict(pairs)
    return query if len(query) == len(pairs) else None


class FastReads:
    """Pure ASGI: serves the registered reads, hands everything else to ``app``."""

    def __init__(
        self, app: ASGIApp, routes: tuple[FastRead, ...], state: Any, streams: tuple[FastStream, ...] = ()
    ) -> None:
        self.app = app
        self.routes: tuple[FastRead | FastStream, ...] = (*routes, *streams)
        self.state = state  # the FastAPI app's state: settings, key cache, rate limiter, db
        self._labels = {route.path: _Route(f"/v1{route.path}") for route in self.routes}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET" and await self._served(scope, receive, send):
            return
        await self.app(scope, receive, send)

    def _match(self, path: str) -> tuple[FastRead | FastStream, dict[str, str]] | None:
        for route in self.routes:
            found = route.pattern.fullmatch(path)
            if found is not None:
                return route, found.groupdict()
        return None

    async def _served(self, scope: Scope, receive: Receive, send: Send) -> bool:
        path: str = scope["path"]
        matched = self._match(path)
        if matched is None or _has_body(scope) or "\x00" in path:
            return False
        route, params = matched
        query = _query(scope.get("query_string", b""))
        if query is None or any("\x00" in k or "\x00" in v for k, v in query.items()):
            return False
        if isinstance(route, FastStream):
            if query or _header(scope, b"x-mas-observer") is not None:
                return False
            kwargs: QueryArgs = {}
        else:
            parsed = route.parse(query)
            if parsed is None:
                return False
            kwargs = parsed
        key_id = self._api_key_id(scope)
        if key_id is None:
            return False
        scope["route"] = self._labels[route.path]
        scope["path_params"] = params
        if "session_id" in params:
            session_id_var.set(params["session_id"])
        try:
            limiter: RateLimiter = self.state.rate_limiter
            spend(self.state.settings, limiter, key_id, "GET", route.path)
            if isinstance(route, FastStream):
                stream = await self._open(route, scope, params)
            else:
                db: Database = self.state.db
                body = await route.render(db, **params, **kwargs)
        except ApiError as exc:
            await error_response(exc)(scope, receive, send)
            return True
        if isinstance(route, FastStream):
            await stream(scope, receive, send)
            return True
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-length", str(len(body)).encode()), _JSON_HEADERS],
            }
        )
        await send({"type": "http.response.body", "body": body})
        return True

    async def _open(self, route: FastStream, scope: Scope, params: dict[str, str]) -> EventStream:
        settings: Settings = self.state.settings
        last_event_id = _header(scope, b"last-event-id")
        frames = await route.open(
            self.state.db,
            self.state.notifier,
            settings,
            **params,
            last_event_id=last_event_id.decode("latin-1") if last_event_id is not None else None,
        )
        return EventStream(frames, settings.stream_heartbeat_seconds)

    def _api_key_id(self, scope: Scope) -> str | None:
        """The id of the API key presented, when known without a database read; None otherwise
        (no credential, a worker credential, a stored key not validated lately: FastAPI decides)."""
        x_api_key = _header(scope, b"x-api-key")
        authorization = _header(scope, b"authorization")
        key = presented_key(
            x_api_key.decode("latin-1") if x_api_key is not None else None,
            authorization.decode("latin-1") if authorization is not None else None,
        )
        if key is None:
            return None
        settings: Settings = self.state.settings
        cache: KeyCache = self.state.key_cache
        principal = known_principal(settings, cache, key)
        return principal.id if principal is not None and principal.kind == "api_key" else None
