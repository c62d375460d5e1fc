"""The query image out of a multipart body: exactly one ``image`` file part, or a clear 400."""

from __future__ import annotations

import pytest

from serving.errors import ApiError
from serving.uploads import MAX_PARTS, image_part

BOUNDARY = "xYzZY"


def form(*parts: tuple[str, str | None, bytes]) -> bytes:
    body = b""
    for name, filename, content in parts:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename is not None else "")
        body += f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n\r\n".encode() + content + b"\r\n"
    return body + f"--{BOUNDARY}--\r\n".encode()


def test_the_image_part_is_found_among_others() -> None:
    assert image_part(form(("note", None, b"hi"), ("image", "q.jpg", b"\xff\xd8binary")), BOUNDARY) == b"\xff\xd8binary"


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
        image_part(body, boundary)
