"""The query image out of a multipart body: exactly one ``image`` file part, or a clear 400."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from serving.errors import ApiError, PayloadTooLargeError
from serving.uploads import MAX_PARTS, image_part

BOUNDARY = "xYzZY"


def form(*parts: tuple[str, str | None, bytes]) -> bytes:
    body = b""
    for name, filename, content in parts:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename is not None else "")
        body += f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n\r\n".encode() + content + b"\r\n"
    return body + f"--{BOUNDARY}--\r\n".encode()


def parsed(body: bytes, boundary: str = BOUNDARY, chunk: int = 65536, max_bytes: int = 1000) -> bytes:
    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(body), chunk):
            yield body[start : start + chunk]

    return asyncio.run(image_part(chunks(), boundary, max_bytes))


@pytest.mark.parametrize("chunk", [1, 7, 65536])
def test_the_image_part_is_found_among_others_however_the_body_is_cut(chunk: int) -> None:
    body = form(("note", None, b"hi"), ("image", "q.jpg", b"\xff\xd8binary"), ("after", None, b"x" * 50))
    assert parsed(body, chunk=chunk) == b"\xff\xd8binary"


def test_an_image_part_over_the_cap_is_refused_while_it_streams_in() -> None:
    with pytest.raises(PayloadTooLargeError, match="larger than the 1,000-byte limit"):
        parsed(form(("image", "q.jpg", b"x" * 1001)))


@pytest.mark.parametrize(("body", "boundary", "message"), [
    (form(("image", "q.jpg", b"x")), "", "has no boundary"),
    (form(("image", None, b"x")), BOUNDARY, "must be a file"),
    (form(("image", "a.jpg", b"x"), ("image", "b.jpg", b"y")), BOUNDARY, "more than one 'image' field"),
    (form(("photo", "q.jpg", b"x")), BOUNDARY, "has no 'image' field"),
    (form(*[(f"f{i}", None, b"x") for i in range(MAX_PARTS + 1)]), BOUNDARY, f"more than {MAX_PARTS} parts"),
    (b"--xYzZY\r\nno headers end", BOUNDARY, "malformed"),
])
def test_bad_forms_get_a_clear_error(body: bytes, boundary: str, message: str) -> None:
    with pytest.raises(ApiError, match=message):
        parsed(body, boundary)
