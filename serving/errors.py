"""API errors and the exception handlers that turn every failure into a JSON body with the right status."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.openapi import ResponseSpec
from litestar.openapi.spec import Example
from litestar.types import ExceptionHandlersMap

from imagesearch.errors import (
    ArtifactError,
    ImageError,
    ImageTooLargeError,
    ImageTooSmallError,
    NotAnImageError,
    TruncatedImageError,
)
from serving.schemas import ErrorBody

log = logging.getLogger(__name__)
INVALID_INDEX = "invalid_index"  # an index version that fails verification (an ArtifactError), as the error code says


class ApiError(Exception):
    """An error the API answers on purpose: ``status``, a short ``error`` tag and a human ``detail``."""

    status = HTTPStatus.BAD_REQUEST
    error = "bad_request"

    def __init__(self, detail: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.headers = dict(headers or {})


class UnsupportedMediaTypeError(ApiError):
    status = HTTPStatus.UNSUPPORTED_MEDIA_TYPE
    error = "unsupported_media_type"


class PayloadTooLargeError(ApiError):
    status = HTTPStatus.REQUEST_ENTITY_TOO_LARGE
    error = "payload_too_large"


class BodyTimeoutError(ApiError):
    status = HTTPStatus.REQUEST_TIMEOUT
    error = "body_timeout"


class ClientDisconnectedError(ApiError):
    """The client hung up before its body arrived: nobody reads this answer, but logs and metrics do."""

    error = "client_disconnected"


class UnknownItemError(ApiError):
    status = HTTPStatus.NOT_FOUND
    error = "unknown_item"


class UnauthorizedError(ApiError):
    status = HTTPStatus.UNAUTHORIZED
    error = "unauthorized"

    def __init__(self, detail: str) -> None:
        super().__init__(detail, {"WWW-Authenticate": "Bearer"})


class ForbiddenError(ApiError):
    status = HTTPStatus.FORBIDDEN
    error = "forbidden"


class RetryLaterError(ApiError):
    """The client should come back after ``retry_after_s`` seconds (the ``Retry-After`` header)."""

    def __init__(self, detail: str, retry_after_s: int) -> None:
        super().__init__(detail, {"Retry-After": str(retry_after_s)})


class UnavailableError(RetryLaterError):
    """503: the server cannot take this request now (not ready, or full)."""

    status = HTTPStatus.SERVICE_UNAVAILABLE
    error = "unavailable"


class TooManyRequestsError(RetryLaterError):
    """429: this client already holds its share of the server (admission slots or query memory); the others are
    served meanwhile. A client's own flood is its error, not the server's: it never counts as a 5xx."""

    status = HTTPStatus.TOO_MANY_REQUESTS
    error = "too_many_requests"


class NotReadyError(UnavailableError):
    error = "no_index_loaded"


class OverloadedError(UnavailableError):
    error = "overloaded"


# Not an image at all is a media-type problem; an image we recognise but cannot use is unprocessable.
IMAGE_ERROR_STATUS: dict[type[ImageError], HTTPStatus] = {
    NotAnImageError: HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
    TruncatedImageError: HTTPStatus.UNPROCESSABLE_ENTITY,
    ImageTooLargeError: HTTPStatus.UNPROCESSABLE_ENTITY,
    ImageTooSmallError: HTTPStatus.UNPROCESSABLE_ENTITY,
}


# The same tag whether the API or Litestar itself refuses (e.g. a body over the cap before any handler runs).
ERROR_TAGS = {HTTPStatus.REQUEST_ENTITY_TOO_LARGE: PayloadTooLargeError.error}


# A typical answer for each error status, shown as the example in the API docs (routes may name their own).
ERROR_EXAMPLES: dict[int, tuple[str, str]] = {
    400: ("bad_request", "min_price (50) is above max_price (10)"),
    401: (UnauthorizedError.error, "this endpoint needs an 'Authorization: Bearer <admin token>' header"),
    403: (ForbiddenError.error, "the admin token is wrong"),
    404: (UnknownItemError.error, "no item 'nope' in index version 20260101T000000Z"),
    408: (BodyTimeoutError.error, "the request body did not arrive within 15 s"),
    413: (PayloadTooLargeError.error, "the image is larger than the 10,485,760-byte limit"),
    415: (UnsupportedMediaTypeError.error, "not a recognised image format"),
    422: ("image_too_small", "8x8 is smaller than 16px on a side"),
    429: (TooManyRequestsError.error, "this client already has 16 requests being served; retry shortly"),
    503: (OverloadedError.error, "too many image queries are waiting; retry shortly"),
}
ERROR_DESCRIPTIONS = {
    400: "The request is malformed: a parameter out of range or unknown, an empty or missing image.",
    401: "No admin token was presented.",
    403: "The admin token is wrong.",
    404: "No such item in the index being served.",
    408: "The request body did not arrive in full within the server's body deadline.",
    413: "The image is larger than the server's upload limit.",
    415: "The body is not an image (or not a multipart form with one).",
    422: "The image or index is recognised but cannot be used (too small, too large, truncated, invalid).",
    429: "This client already holds its share of the server's admission slots or query memory: retry after the "
         "Retry-After header's seconds.",
    503: "Not ready (no index loaded yet) or overloaded: retry after the Retry-After header's seconds.",
}


def error_responses(*statuses: int, examples: Mapping[int, tuple[str, str]] | None = None) -> dict[int, ResponseSpec]:
    """OpenAPI entries for the error statuses a route may answer, each with an example body."""

    def spec(status: int) -> ResponseSpec:
        error, detail = {**ERROR_EXAMPLES, **(examples or {})}[status]
        example = Example(summary=detail, value={"status": status, "error": error, "detail": detail})
        return ResponseSpec(
            ErrorBody, description=ERROR_DESCRIPTIONS[status], generate_examples=False, examples=[example]
        )

    return {status: spec(status) for status in statuses}


def error_response(status: int, error: str, detail: str, headers: Mapping[str, str] | None = None) -> Response[ErrorBody]:
    return Response(ErrorBody(status=status, error=error, detail=detail), status_code=status, headers=dict(headers or {}))


def _api_error(_: Request[Any, Any, Any], exc: ApiError) -> Response[ErrorBody]:
    return error_response(exc.status, exc.error, exc.detail, exc.headers)


def _image_error(_: Request[Any, Any, Any], exc: ImageError) -> Response[ErrorBody]:
    status = next((code for kind, code in IMAGE_ERROR_STATUS.items() if isinstance(exc, kind)), HTTPStatus.BAD_REQUEST)
    return error_response(status, f"image_{exc.reason}", str(exc))


def _artifact_error(_: Request[Any, Any, Any], exc: ArtifactError) -> Response[ErrorBody]:
    return error_response(HTTPStatus.UNPROCESSABLE_ENTITY, INVALID_INDEX, str(exc))


def _validation_detail(exc: ValidationException) -> str:
    problems = exc.extra if isinstance(exc.extra, list) else []
    parts = [
        f"{problem.get('key', '?')} ({getattr(source := problem.get('source', 'request'), 'value', source)}): "
        f"{problem.get('message', '')}"
        for problem in problems
        if isinstance(problem, dict)
    ]
    return "; ".join(parts) or str(exc.detail)


def _http_exception(_: Request[Any, Any, Any], exc: HTTPException) -> Response[ErrorBody]:
    status = exc.status_code
    error = ERROR_TAGS.get(status) or HTTPStatus(status).phrase.lower().replace(" ", "_").replace("-", "_")
    detail = _validation_detail(exc) if isinstance(exc, ValidationException) else str(exc.detail)
    return error_response(status, error, detail, exc.headers)


def _unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[ErrorBody]:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(HTTPStatus.INTERNAL_SERVER_ERROR, "internal_error", "an unexpected error occurred")


EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    ApiError: _api_error,
    ImageError: _image_error,
    ArtifactError: _artifact_error,
    HTTPException: _http_exception,
    Exception: _unexpected,
}
