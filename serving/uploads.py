"""The query image from a request: a multipart ``image`` field or a raw ``image/*`` body, size-capped."""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.datastructures import UploadFile
from litestar.exceptions.http_exceptions import RequestEntityTooLarge

from serving.errors import ApiError, PayloadTooLargeError, UnsupportedMediaTypeError

FIELD = "image"
MULTIPART = "multipart/form-data"
# Room for the multipart boundaries and part headers around an image of the maximum size.
MULTIPART_OVERHEAD = 64 * 1024


def _too_large(max_bytes: int) -> PayloadTooLargeError:
    return PayloadTooLargeError(f"the image is larger than the {max_bytes:,}-byte limit")


async def read_image(request: Request[Any, Any, Any], max_bytes: int) -> bytes:
    media_type, _ = request.content_type
    try:
        if media_type == MULTIPART:
            data = await _read_multipart(request)
        elif media_type.startswith("image/"):
            data = await request.body()
        else:
            raise UnsupportedMediaTypeError(
                f"send the image as {MULTIPART} (field {FIELD!r}) or as a raw image/* body, "
                f"not {media_type or 'a body without Content-Type'}"
            )
    except RequestEntityTooLarge:
        raise _too_large(max_bytes) from None
    if len(data) > max_bytes:
        raise _too_large(max_bytes)
    if not data:
        raise ApiError("the image is empty")
    return data


async def _read_multipart(request: Request[Any, Any, Any]) -> bytes:
    form = await request.form()
    upload = form.get(FIELD)
    if upload is None:
        raise ApiError(f"the multipart form has no {FIELD!r} field")
    if not isinstance(upload, UploadFile):
        raise ApiError(f"the {FIELD!r} field must be a file, not a text value")
    try:
        return await upload.read()
    finally:
        await upload.close()
