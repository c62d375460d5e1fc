"""Errors as the API answers them: the JSON body, the status per image error, and the documented examples."""

from __future__ import annotations

from http import HTTPStatus

import msgspec

from imagesearch.errors import ImageTooSmallError, NotAnImageError, TruncatedImageError
from serving import errors
from serving.schemas import ErrorBody


def test_error_response_body_and_headers() -> None:
    response = errors.error_response(503, errors.OverloadedError.error, "busy", {"Retry-After": "1"})
    assert response.status_code == 503 and response.headers["Retry-After"] == "1"
    assert msgspec.to_builtins(response.content) == {"status": 503, "error": "overloaded", "detail": "busy"}
    assert isinstance(response.content, ErrorBody)


def test_image_errors_map_to_415_or_422() -> None:
    assert errors.IMAGE_ERROR_STATUS[NotAnImageError] == HTTPStatus.UNSUPPORTED_MEDIA_TYPE
    for kind in (TruncatedImageError, ImageTooSmallError):
        assert errors.IMAGE_ERROR_STATUS[kind] == HTTPStatus.UNPROCESSABLE_ENTITY


def test_documented_error_responses_carry_their_examples() -> None:
    specs = errors.error_responses(400, 404, 503, examples={404: ("unknown_item", "no item 'x'")})
    assert sorted(specs) == [400, 404, 503]
    assert specs[404].examples[0].value == {"status": 404, "error": "unknown_item", "detail": "no item 'x'"}
    assert specs[503].examples[0].value["error"] == errors.ERROR_EXAMPLES[503][0]
    assert all(specs[status].description == errors.ERROR_DESCRIPTIONS[status] for status in specs)
