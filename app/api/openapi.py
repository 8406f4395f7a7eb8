"""The OpenAPI document lists the errors the API really answers, in its envelope.

FastAPI documents a 422 that this API never sends (validation errors are 400s). Each operation
instead lists 400 (bad input), 401 (no valid key: every /v1 route), 403 (a worker credential off
its routes), 404 (an unknown id in the path, or in the body of a /v1 resource route), 409 where a
conflict is possible, 413 (a body over its limit, on routes that take one) and 500, each with the
``ErrorResponse`` envelope and the ``request-id`` header.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import JsonValue

# Operations that can answer 409: version preconditions, archived sessions, path and content
# preconditions of memories, one running dream per store.
_CONFLICTS = {
    ("post", "/v1/agents/{agent_id}"),
    ("post", "/v1/sessions/{session_id}/events"),
    ("post", "/v1/dreams"),
    ("post", "/v1/memory_stores/{memory_store_id}/memories"),
    ("post", "/v1/memory_stores/{memory_store_id}/memories/{memory_id}"),
    ("delete", "/v1/memory_stores/{memory_store_id}/memories/{memory_id}"),
}
_DESCRIPTIONS = {
    "400": "Invalid request (`invalid_request_error`)",
    "401": "No valid API key (`authentication_error`)",
    "403": "A credential that may not call this route (`permission_error`)",
    "404": "Not found (`not_found_error`)",
    "409": "Conflict with the current state (`invalid_request_error` or a memory precondition type)",
    "413": "Request body too large (`request_too_large`)",
    "429": "Rate limited (`rate_limit_error`, with `retry-after`)",
    "500": "Internal error (`api_error`)",
}
_ERROR_SCHEMA: dict[str, JsonValue] = {
    "title": "ErrorResponse",
    "type": "object",
    "required": ["type", "error", "request_id"],
    "properties": {
        "type": {"type": "string", "const": "error"},
        "error": {
            "type": "object",
            "required": ["type", "message"],
            "properties": {
                "type": {"type": "string"},
                "message": {"type": "string"},
                "details": {"type": "object"},
            },
        },
        "request_id": {"type": "string"},
    },
}
_PATH_PARAM = re.compile(r"\{[^}]+\}")


def _has_body(method: str, operation: dict[str, JsonValue]) -> bool:
    return "requestBody" in operation or method in ("post", "put", "patch")


def _statuses(
    method: str,
    path: str,
    operation: dict[str, JsonValue],
) -> list[str]:
    statuses = ["400"]
    model_route = path.startswith("/v1/messages")
    if path.startswith("/v1/"):
        statuses.append("401")
    if path.startswith("/v1/") and not model_route:
        statuses.append("403")  # a worker credential (environment key, work token) off its routes
    refers = path.startswith("/v1/") and not model_route and _has_body(method, operation)
    if _PATH_PARAM.search(path) or refers:
        statuses.append("404")  # an id in the path, or one a body refers to (an agent, a store)
    if (method, path) in _CONFLICTS:
        statuses.append("409")
    if _has_body(method, operation):
        statuses.append("413")
    return [*statuses, "500"]


def _error_response(status: str) -> dict[str, JsonValue]:
    return {
        "description": _DESCRIPTIONS[status],
        "headers": {"request-id": {"schema": {"type": "string"}, "description": "Also in the body"}},
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}},
    }


def document(app: FastAPI) -> dict[str, Any]:  # JSON boundary: the OpenAPI document
    schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    schema.setdefault("components", {}).setdefault("schemas", {})["ErrorResponse"] = _ERROR_SCHEMA
    for path, operations in schema.get("paths", {}).items():
        for method, operation in operations.items():
            responses = operation.setdefault("responses", {})
            responses.pop("422", None)
            for status in _statuses(method, path, operation):
                responses.setdefault(status, _error_response(status))
    for unused in ("HTTPValidationError", "ValidationError"):
        schema["components"]["schemas"].pop(unused, None)
    return schema


def install_openapi(app: FastAPI) -> None:
    """``/openapi.json`` built once, on first request, by ``document``."""
    cached: dict[str, Any] = {}  # JSON boundary: the OpenAPI document

    def openapi() -> dict[str, Any]:  # JSON boundary: the OpenAPI document
        if not cached:
            cached.update(document(app))
        return cached

    app.openapi = openapi  # type: ignore[method-assign]
