"""The query image from a request: a multipart ``image`` field or a raw ``image/*`` body, size-capped.

The body is read into memory (capped, under the body deadline, within the request's memory reservation); a
multipart body is parsed as it streams in, so only the image part is kept. Nothing is spooled to temporary
files, so an upload that stalls or breaks leaves nothing behind.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from typing import Any

from litestar import Request
from litestar.exceptions.http_exceptions import RequestEntityTooLarge
from multipart import MultipartSegment, ParserError, ParserLimitReached, PushMultipartParser  # type: ignore[import-untyped]

from serving.errors import ApiError, PayloadTooLargeError, UnsupportedMediaTypeError
from serving.memory_budget import BODY_HELD_COPIES, reservation_of

FIELD = "image"
MULTIPART = "multipart/form-data"
# Room for the multipart boundaries and part headers around an image of the maximum size.
MULTIPART_OVERHEAD = 64 * 1024
# A query form needs one part; a few more are tolerated (and ignored), thousands are not.
MAX_PARTS = 8


def _too_large(max_bytes: int) -> PayloadTooLargeError:
    return PayloadTooLargeError(f"the image is larger than the {max_bytes:,}-byte limit")


async def read_image(request: Request[Any, Any, Any], max_bytes: int) -> bytes:
    """The image, with the request's memory reservation (serving/memory_budget.py) shrunk to the one copy kept."""
    media_type, options = request.content_type
    if media_type != MULTIPART and not media_type.startswith("image/"):
        raise UnsupportedMediaTypeError(
            f"send the image as {MULTIPART} (field {FIELD!r}) or as a raw image/* body, "
            f"not {media_type or 'a body without Content-Type'}"
        )
    try:
        if media_type == MULTIPART:
            data = await image_part(request.stream(), options.get("boundary", ""), max_bytes)
        else:
            data = await request.body()
    except RequestEntityTooLarge:
        raise _too_large(max_bytes) from None
    if len(data) > max_bytes:
        raise _too_large(max_bytes)
    if not data:
        raise ApiError("the image is empty")
    reservation = reservation_of(request)
    if reservation is not None:
        reservation.shrink_body(len(data) * BODY_HELD_COPIES)
    return data


async def image_part(chunks: AsyncIterable[bytes], boundary: str, max_bytes: int) -> bytes:
    """The content of the one ``image`` file part of a multipart body, parsed as the body streams in: only the
    part's content is kept, never the whole body beside it."""
    if not boundary:
        raise ApiError("the multipart Content-Type has no boundary")
    image: bytes | None = None
    segment: MultipartSegment | None = None
    content = bytearray()
    try:
        with PushMultipartParser(boundary.encode(), max_segment_count=MAX_PARTS) as parser:
            async for chunk in _then_end(chunks):
                for event in parser.parse(chunk):
                    if isinstance(event, MultipartSegment):
                        segment = event
                        content.clear()
                    elif event:
                        content += event
                        if len(content) > max_bytes:
                            raise _too_large(max_bytes)
                    elif segment is not None and segment.name == FIELD:
                        if segment.filename is None:
                            raise ApiError(f"the {FIELD!r} field must be a file, not a text value")
                        if image is not None:
                            raise ApiError(f"the multipart form has more than one {FIELD!r} field")
                        image = bytes(content)
                        content.clear()
    except ParserLimitReached:
        raise ApiError(f"the multipart form has more than {MAX_PARTS} parts") from None
    except ParserError as exc:
        raise ApiError(f"the multipart body is malformed: {exc}") from None
    if image is None:
        raise ApiError(f"the multipart form has no {FIELD!r} field")
    return image


async def _then_end(chunks: AsyncIterable[bytes]) -> AsyncIterator[bytes]:
    async for chunk in chunks:
        if chunk:
            yield chunk
    yield b""  # an empty chunk tells the parser the body has ended
