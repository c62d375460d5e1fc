"""The URIs a catalog may use (local paths, file://, gs://, http(s)://): parsing and resolving, no I/O."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import unquote, urlparse

from imagesearch.errors import ImageTooLargeError


def local_path(uri: str) -> Path | None:
    """The filesystem path behind a local path or file:// URI; None for remote URIs."""
    parsed = urlparse(uri)
    if parsed.scheme == "file":
        return Path(unquote(parsed.path))
    if parsed.scheme in ("", ) or (len(parsed.scheme) == 1 and uri[1:3] in (":\\", ":/")):
        return Path(uri)
    return None


def resolve(uri: str, base: str) -> str:
    """``uri`` made absolute against the location ``base`` (a file's URI), if it is relative."""
    try:
        if urlparse(uri).scheme or uri.startswith("/"):
            return uri
    except ValueError:
        return uri  # malformed (e.g. an unclosed IPv6 bracket): the fetch refuses it, as a per-item failure
    if base_path := local_path(base):
        # Lexically only: the input policy resolves symlinks when the file is read, and a hostile row (a NUL
        # byte, a loop of links) must not fail the whole catalog here.
        return os.path.abspath(base_path.parent / uri)
    return base.rsplit("/", 1)[0] + "/" + uri


def split_gs(uri: str) -> tuple[str, str]:
    parsed = urlparse(uri)
    return parsed.netloc, parsed.path.lstrip("/")


def too_large(size: int, max_bytes: int) -> ImageTooLargeError:
    return ImageTooLargeError(f"{size:,} bytes exceeds the {max_bytes:,}-byte limit")
