"""The request body's edge: size limits before anything is read, and JSON the databases can hold.

``BodyGuard`` is pure ASGI middleware in front of every route (authentication included), so:

- a body declared (``Content-Length``) or found (while streaming) larger than its route's limit is
  refused with a 413 before the rest is read: a huge POST without a key costs no memory;
- a JSON body is checked once, here, for what no endpoint may store: NUL characters (PostgreSQL's
  text and jsonb refuse them), lone UTF-16 surrogates (``"\\ud800"``: no database stores them) and
  nesting deeper than ``MAX_JSON_DEPTH`` (parsers, validators and serialisers recurse), in any
  string or key of any field. Each is a 400 naming the field, never a 500 from deep inside.

Uploads (``multipart/form-data``, ``application/octet-stream``) are streamed through with their
bytes counted instead of buffered; their routes read them with their own (larger) caps.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.errors import error_response
from app.errors import ApiError, InvalidRequest, RequestTooLarge
from app.shared.validation import join_path

MAX_JSON_DEPTH = 64
_SURROGATE = re.compile("[\ud800-\udfff]")
_STREAMED_TYPES = ("multipart/form-data", "application/octet-stream")


class BodyTooLarge(RequestTooLarge):
    def __init__(self, limit: int) -> None:
        super().__init__(f"the request body is larger than the {limit:,} bytes this endpoint accepts")


@dataclass(frozen=True)
class BodyLimits:
    """The largest body a route accepts: the longest matching path prefix in ``routes``, else
    ``default``."""

    default: int
    routes: Mapping[str, int] = field(default_factory=dict)

    def for_path(self, path: str) -> int:
        best, best_len = self.default, -1
        for prefix, limit in self.routes.items():
            if path.startswith(prefix) and len(prefix) > best_len:
                best, best_len = limit, len(prefix)
        return best


def _declared_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _content_type(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == b"content-type":
            return str(value.decode("latin-1")).lower()
    return ""


class BodyGuard:
    def __init__(self, app: ASGIApp, limits: BodyLimits) -> None:
        self.app = app
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self._guarded(scope, receive, tracking)
        except ApiError as exc:
            # Raised here, or by an upload's counted stream that its route did not handle.
            if started:
                raise
            response = error_response(exc)
            if isinstance(exc, BodyTooLarge):
                # Close rather than drain the rest of an oversized body.
                response.headers["connection"] = "close"
            await response(scope, receive, send)

    async def _guarded(self, scope: Scope, receive: Receive, send: Send) -> None:
        limit = self.limits.for_path(scope.get("path", ""))
        declared = _declared_length(scope)
        content_type = _content_type(scope)
        if declared is not None and declared > limit:
            raise BodyTooLarge(limit)
        if content_type.startswith(_STREAMED_TYPES):
            await self.app(scope, _counting(receive, limit), send)
        elif declared == 0:
            await self.app(scope, receive, send)
        else:
            await self._buffered(scope, receive, send, limit, content_type)

    async def _buffered(
        self, scope: Scope, receive: Receive, send: Send, limit: int, content_type: str
    ) -> None:
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                # The client left before sending its body: nothing to answer.
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise BodyTooLarge(limit)
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        if body and (content_type == "" or "json" in content_type):
            check_json_body(body)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


def _counting(receive: Receive, limit: int) -> Receive:
    received = 0

    async def counted() -> Message:
        nonlocal received
        message = await receive()
        received += len(message.get("body", b""))
        if received > limit:
            raise BodyTooLarge(limit)
        return message

    return counted


def _may_need_checking(body: bytes) -> bool:
    """Only an escape can put a NUL or a surrogate into a valid JSON string, and only that many
    brackets can nest that deep: most bodies need no second look."""
    return b"\\u" in body or body.count(b"[") + body.count(b"{") > MAX_JSON_DEPTH


def check_json_body(body: bytes) -> None:
    """400 if the JSON ``body`` nests too deeply or holds a string no database can store.
    A body that is not JSON at all is left to the endpoint's own parser (and its 400)."""
    if not _may_need_checking(body):
        return
    try:
        data = json.loads(body)
    except RecursionError:
        raise InvalidRequest(f"request: JSON nested deeper than {MAX_JSON_DEPTH} levels") from None
    except ValueError:
        return
    check_json_value(data)


def _text_problem(text: str) -> str | None:
    if "\x00" in text:
        return "NUL characters are not allowed"
    if _SURROGATE.search(text):
        return "not valid Unicode text (it holds a lone surrogate)"
    return None


def check_json_value(data: Any, prefix: str = "") -> None:
    """Walks parsed JSON without recursion; 400 at the first bad string, key or depth."""
    stack: list[tuple[Any, tuple[str | int, ...]]] = [(data, ())]
    while stack:
        value, path = stack.pop()
        if len(path) > MAX_JSON_DEPTH:
            where = join_path(prefix, path[:3]) or "request"
            raise InvalidRequest(f"{where}: JSON nested deeper than {MAX_JSON_DEPTH} levels")
        if isinstance(value, str):
            problem = _text_problem(value)
            if problem:
                raise InvalidRequest(f"{join_path(prefix, path) or 'request'}: {problem}")
        elif isinstance(value, dict):
            for key, item in value.items():
                problem = _text_problem(key)
                if problem:
                    raise InvalidRequest(f"{join_path(prefix, path) or 'request'}: a key: {problem}")
                stack.append((item, (*path, key)))
        elif isinstance(value, list):
            stack.extend((item, (*path, index)) for index, item in enumerate(value))
