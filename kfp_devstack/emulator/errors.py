"""Errors shaped like the KFP API server's.

The grpc-gateway endpoints answer with a ``google.rpc.Status`` whose top-level
``message`` is the server's chain of wrapped internal messages and whose single
detail is a nested ``google.rpc.Status`` carrying the short user-facing text
(docs/emulator.md §7). The helpers below build the same chains the server's
``util`` package builds (``NewResourceNotFoundError``, ``NewInvalidInputError``,
``NewInternalServerError``, ...), so a client that parses messages sees the same text.

The upload endpoints are plain HTTP handlers with their own error shape
(``{"error_message", "error_details"}``), see :class:`UploadError`.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Any

STATUS_TYPE_URL = "type.googleapis.com/google.rpc.Status"


class Code(IntEnum):
    """google.rpc.Code."""

    OK = 0
    CANCELLED = 1
    UNKNOWN = 2
    INVALID_ARGUMENT = 3
    DEADLINE_EXCEEDED = 4
    NOT_FOUND = 5
    ALREADY_EXISTS = 6
    PERMISSION_DENIED = 7
    RESOURCE_EXHAUSTED = 8
    FAILED_PRECONDITION = 9
    ABORTED = 10
    OUT_OF_RANGE = 11
    UNIMPLEMENTED = 12
    INTERNAL = 13
    UNAVAILABLE = 14
    DATA_LOSS = 15
    UNAUTHENTICATED = 16


# grpc-gateway v2 runtime.HTTPStatusFromCode. Note Aborted -> 409: the server's
# NewBadRequestError uses Aborted (docs/emulator.md §7).
HTTP_STATUS_BY_CODE: dict[Code, int] = {
    Code.OK: 200,
    Code.CANCELLED: 499,
    Code.UNKNOWN: 500,
    Code.INVALID_ARGUMENT: 400,
    Code.DEADLINE_EXCEEDED: 504,
    Code.NOT_FOUND: 404,
    Code.ALREADY_EXISTS: 409,
    Code.PERMISSION_DENIED: 403,
    Code.RESOURCE_EXHAUSTED: 429,
    Code.FAILED_PRECONDITION: 400,
    Code.ABORTED: 409,
    Code.OUT_OF_RANGE: 400,
    Code.UNIMPLEMENTED: 501,
    Code.INTERNAL: 500,
    Code.UNAVAILABLE: 503,
    Code.DATA_LOSS: 500,
    Code.UNAUTHENTICATED: 401,
}

# The code a gateway-style error body carries for a bare HTTP status (used for
# injected faults whose test only names the status).
CODE_BY_HTTP_STATUS: dict[int, Code] = {
    400: Code.INVALID_ARGUMENT,
    401: Code.UNAUTHENTICATED,
    403: Code.PERMISSION_DENIED,
    404: Code.NOT_FOUND,
    409: Code.ABORTED,
    429: Code.RESOURCE_EXHAUSTED,
    499: Code.CANCELLED,
    500: Code.INTERNAL,
    501: Code.UNIMPLEMENTED,
    503: Code.UNAVAILABLE,
    504: Code.DEADLINE_EXCEEDED,
}


class ApiError(Exception):
    """An error answered by a grpc-gateway endpoint.

    ``message`` is the internal chain (the top-level ``message`` of the body);
    ``detail`` is the user-facing text of the nested Status detail, or ``None``
    for errors raised by the gateway itself (routing, request decoding), which
    carry no details.
    """

    def __init__(self, code: Code, message: str, detail: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.detail = detail

    @property
    def http_status(self) -> int:
        return HTTP_STATUS_BY_CODE.get(self.code, 500)

    def wrap(self, context: str) -> ApiError:
        """Prefixes the internal chain, as the server's ``util.Wrap`` does."""
        return ApiError(self.code, f"{context}: {self.message}", self.detail)

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": int(self.code), "message": self.message}
        if self.detail is not None:
            body["details"] = [{"@type": STATUS_TYPE_URL, "code": int(self.code), "message": self.detail}]
        return body


class UploadError(Exception):
    """An error answered by the multipart upload handlers (their own shape, docs/emulator.md §7)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message

    def body(self) -> dict[str, Any]:
        return {"error_message": self.message, "error_details": self.message}


def not_found(resource_type: str, name: str) -> ApiError:
    text = f"{resource_type} {name} not found"
    return ApiError(Code.NOT_FOUND, f"ResourceNotFoundError: {text}", text)


def invalid_input(message: str) -> ApiError:
    return ApiError(Code.INVALID_ARGUMENT, f"Invalid input error: {message}", message)


def invalid_input_with_cause(external: str, cause: str) -> ApiError:
    return ApiError(Code.INVALID_ARGUMENT, f"InvalidInputError: {external}: {cause}", external)


def failed_precondition(message: str) -> ApiError:
    return ApiError(Code.FAILED_PRECONDITION, f"Failed precondition error: {message}", message)


def already_exists(message: str) -> ApiError:
    return ApiError(Code.ALREADY_EXISTS, f"Already exist error: {message}", message)


def bad_request(external: str, cause: str) -> ApiError:
    """The server's NewBadRequestError: code Aborted, HTTP 409."""
    return ApiError(Code.ABORTED, f"BadRequestError: {external}: {cause}", external)


def internal(internal_message: str, cause: str) -> ApiError:
    """The server's NewInternalServerError: the user only sees "Internal Server Error"."""
    return ApiError(
        Code.INTERNAL, f"InternalServerError: {internal_message}: {cause}", "Internal Server Error"
    )


def unauthenticated(message: str) -> ApiError:
    return ApiError(Code.UNAUTHENTICATED, f"Unauthenticated error: {message}", message)


def gateway(code: Code, message: str) -> ApiError:
    """An error produced by grpc-gateway before the handler runs: no details."""
    return ApiError(code, message, None)


def status_body_for_http(status: int, message: str | None = None) -> dict[str, Any]:
    """A plausible server body for an HTTP status, for faults that only name the status."""
    code = CODE_BY_HTTP_STATUS.get(status, Code.UNKNOWN)
    text = message or _default_fault_message(code)
    return ApiError(code, text, text).body()


def _default_fault_message(code: Code) -> str:
    if code == Code.INTERNAL:
        return "Internal Server Error"
    if code == Code.UNAVAILABLE:
        return "upstream connect error or disconnect/reset before headers"
    return code.name.replace("_", " ").capitalize()
