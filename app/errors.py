"""Domain errors: each carries its HTTP status and Anthropic error type.

Services raise these; one handler in ``app/api`` renders them as
``{"type":"error","error":{"type","message"[,"details"]},"request_id"}``.
This module imports no other ``app`` module.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal, NotRequired, TypedDict


class ErrorInfo(TypedDict):
    type: str
    message: str
    # JSON boundary: what each error adds (an error_code, the conflicting id, a lease's state).
    details: NotRequired[dict[str, Any]]


class ErrorBody(TypedDict):
    """The error envelope."""

    type: Literal["error"]
    error: ErrorInfo
    request_id: str


class ApiError(Exception):
    status: ClassVar[int] = 500
    error_type: ClassVar[str] = "api_error"
    should_retry: ClassVar[bool | None] = None

    # JSON boundary: ``details`` as ErrorInfo's.
    def __init__(self, message: str, *, error_code: str | None = None, details: dict[str, Any] | None = None):
        super().__init__(message)
        self.message = message
        self.details = dict(details or {}) or None
        if error_code is not None:
            self.details = {**(self.details or {}), "error_code": error_code}

    def body(self, request_id: str) -> ErrorBody:
        error: ErrorInfo = {"type": self.error_type, "message": self.message}
        if self.details:
            error["details"] = self.details
        return {"type": "error", "error": error, "request_id": request_id}


class InvalidRequest(ApiError):
    status = 400
    error_type = "invalid_request_error"


class AuthenticationFailed(ApiError):
    status = 401
    error_type = "authentication_error"


class PermissionDenied(ApiError):
    status = 403
    error_type = "permission_error"


class NotFound(ApiError):
    status = 404
    error_type = "not_found_error"


class Conflict(ApiError):
    """409. The hosted Managed Agents API answers conflicts with ``invalid_request_error`` (behaviour §1)."""

    status = 409
    error_type = "invalid_request_error"
    should_retry = False


class MemoryPreconditionFailed(ApiError):
    """409: a memory's content is not what the caller's ``content_sha256`` precondition expects."""

    status = 409
    error_type = "memory_precondition_failed_error"
    should_retry = False


class MemoryPathConflict(ApiError):
    """409: the path is taken (``details.conflicting_memory_id`` names the memory holding it)."""

    status = 409
    error_type = "memory_path_conflict_error"
    should_retry = False


class PreconditionFailed(ApiError):
    status = 412
    error_type = "invalid_request_error"
    should_retry = False


class RequestTooLarge(ApiError):
    status = 413
    error_type = "request_too_large"


class RateLimited(ApiError):
    """429; ``retry_after`` (seconds) becomes the ``retry-after`` header the SDK waits for."""

    status = 429
    error_type = "rate_limit_error"

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ServiceUnavailable(ApiError):
    status = 503
    error_type = "api_error"
