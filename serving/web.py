"""The web page at ``/``: pick or drop a photo, see similar items, "more like this" on any result."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from litestar import MediaType, Response, get

STATIC_DIR = Path(__file__).parent / "static"
PAGE = STATIC_DIR / "index.html"
FAVICON_URL = "/static/favicon.svg"


@cache
def _page() -> bytes:
    return PAGE.read_bytes()


@get("/", operation_id="getWebPage", include_in_schema=False, sync_to_thread=False)
def web_page() -> Response[bytes]:
    return Response(_page(), media_type=MediaType.HTML)
