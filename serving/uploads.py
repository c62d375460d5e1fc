"""The query image from a request: a multipart ``image`` field or a raw ``image/*`` body, size-capped.

The body is read whole into memory (capped, and under the admission deadline) and multipart is parsed from
those bytes: nothing is spooled to temporary files, so an upload that stalls or breaks leaves nothing behind.
"""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.exceptions.http_exceptions import RequestEntityTooLarge
from multipart import MultipartSegment, ParserError, ParserLimitReached, PushMultipartParser  # type: ignore[import-untyped]

from serving.errors import ApiError, PayloadTooLargeError, UnsupportedMediaTypeError

FIELD = "image"
MULTIPART = "multipart/form-data"
# Room for the multipart boundaries and part headers around an image of the maximum size.
MULTIPART_OVERHEAD = 64 * 1024
# A query form needs one part; a few more are tolerated (and ignored), thousands are not.
MAX_PARTS = 8


def _too_large(max_bytes: int) -> PayloadTooLargeError:
    return PayloadTooLargeError(f"the image is larger than the {max_bytes:,}-byte limit")


async def read_image(request: Request[Any, Any, Any], max_bytes: int) -> bytes:
    media_type, options = request.content_type
    if media_type != MULTIPART and not media_type.startswith("image/"):
        raise UnsupportedMediaTypeError(
            f"send the image as {MULTIPART} (field {FIELD!r}) or as a raw image/* body, "
            f"not {media_type or 'a body without Content-Type'}"
        )
    try:
        body = await request.body()
    except RequestEntityTooLarge:
        raise _too_large(max_bytes) from None
    data = image_part(body, options.get("boundary", "")) if media_type == MULTIPART else body
    if len(data) > max_bytes:
        raise _too_large(max_bytes)
    if not data:
        raise ApiError("the image is empty")
    return data


def image_part(body: bytes, boundary: str) -> bytes:
    """The content of the one ``image`` file part of a multipart body."""
    if not boundary:
        raise ApiError("the multipart Content-Type has no boundary")
    image: bytes | None = None
    segment: MultipartSegment | None = None
    content = bytearray()
    try:
        with PushMultipartParser(boundary.encode(), max_segment_count=MAX_PARTS) as parser:
            for chunk in (body, b""):  # an empty chunk tells the parser the body has ended
                for event in parser.parse(chunk):
                    if isinstance(event, MultipartSegment):
                        segment, content = event, bytearray()
                    elif event:
                        content += event
                    elif segment is not None and segment.name == FIELD:
                        if segment.filename is None:
                            raise ApiError(f"the {FIELD!r} field must be a file, not a text value")
                        if image is not None:
                            raise ApiError(f"the multipart form has more than one {FIELD!r} field")
                        image = bytes(content)
    except ParserLimitReached:
        raise ApiError(f"the multipart form has more than {MAX_PARTS} parts") from None
    except ParserError as exc:
        raise ApiError(f"the multipart body is malformed: {exc}") from None
    if image is None:
        raise ApiError(f"the multipart form has no {FIELD!r} field")
    return image
