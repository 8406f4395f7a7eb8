"""One renderer for every error: the Anthropic envelope with a matching `request-id`."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.api.context import current_request_id
from app.api.unbuilt import not_built_message
from app.errors import ApiError, AuthenticationFailed, InvalidRequest, NotFound, RateLimited
from app.shared.validation import join_path

_STATUS_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    409: "invalid_request_error",
    413: "request_too_large",
    422: "invalid_request_error",
    429: "rate_limit_error",
    529: "overloaded_error",
}


def error_response(error: ApiError) -> JSONResponse:
    request_id = current_request_id()
    headers = {"request-id": request_id}
    if error.should_retry is not None:
        headers["x-should-retry"] = "true" if error.should_retry else "false"
    if isinstance(error, RateLimited):
        headers["retry-after"] = str(error.retry_after)
    return JSONResponse(error.body(request_id), status_code=error.status, headers=headers)


_TRANSPORT = ("body", "query", "path", "header")


def _location(loc: tuple[Any, ...]) -> str:
    """Pydantic's error location as the API names fields: ``events[0].content``. Union tags
    (``user.message``, ``function-after[...]``) are dropped."""
    parts = tuple(
        p for p in loc if p not in _TRANSPORT and not (isinstance(p, str) and any(c in p for c in ".[-"))
    )
    return join_path("", parts) or "request"


def _validation_message(exc: RequestValidationError) -> str:
    messages = []
    for err in exc.errors()[:5]:
        if err.get("type") == "json_invalid":
            return f"Request body is not valid JSON: {err.get('ctx', {}).get('error', 'parse error')}"
        where = _location(tuple(err.get("loc", ())))
        msg = str(err.get("msg", "invalid value"))
        msg = msg.removeprefix("Value error, ").removeprefix("Assertion failed, ")
        messages.append(f"{where}: {msg}")
    return "; ".join(messages) or "Invalid request"


async def _api_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return error_response(exc)


async def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return error_response(InvalidRequest(_validation_message(exc)))


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 404:
        return error_response(NotFound(not_built_message(request.method, request.url.path) or "Not found"))
    if exc.status_code == 401:
        return error_response(AuthenticationFailed("Authentication failed"))
    error_class = type(
        "HttpError",
        (ApiError,),
        {"status": exc.status_code, "error_type": _STATUS_TYPES.get(exc.status_code, "api_error")},
    )
    return error_response(error_class(str(exc.detail)))


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
