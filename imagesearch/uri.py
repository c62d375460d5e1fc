"""The URIs a catalog may use (local paths, file://, gs://, http(s)://): parsing and resolving, no I/O."""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import unquote, urlparse

from imagesearch.errors import ImageTooLargeError

# The user name and password part of a URL (``scheme://user:password@host/...``), wherever it appears in a text: up
# to the last ``@`` before the host's end. The scp-like ``git@host:path`` has no ``//`` and is left alone.
_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)[^/?#\s]*@")


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


def redact_userinfo(text: str) -> str:
    """``text`` with the userinfo of every URL in it removed (``https://token@host/x`` -> ``https://host/x``).

    The one form any URL is printed in: logs, errors, summaries, commit messages, ``--help``. A URL's userinfo
    holds credentials (the GitOps token, an SMTP password)."""
    return _USERINFO.sub(r"\g<scheme>", text)


def split_userinfo(url: str) -> tuple[str, str | None, str | None]:
    """(``url`` without its userinfo, the user name, the password), both decoded; None where the URL has none."""
    match = _USERINFO.match(url)
    if match is None:
        return url, None, None
    user, separator, password = unquote(match.group(0)[len(match.group("scheme")) : -1]).partition(":")
    return url[: len(match.group("scheme"))] + url[match.end() :], user, password if separator else None
