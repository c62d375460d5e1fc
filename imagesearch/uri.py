"""Reading bytes from the URIs a catalog may use: local paths, file://, gs:// and http(s)://."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlparse

from imagesearch.errors import ImageFetchError, ImageFetchUnavailableError, ImageMissingError, ImageTooLargeError, is_transient

if TYPE_CHECKING:
    from imagesearch.input_policy import InputPolicy


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


def read_bytes(uri: str, policy: InputPolicy, *, max_bytes: int | None = None) -> bytes:
    """The content at ``uri`` if ``policy`` allows it; typed errors for refused, missing, too large, timeout."""
    from imagesearch.errors import InputRefusedError
    from imagesearch.http_fetch import read_http

    try:
        scheme = policy.check_scheme(uri)
        if scheme == "file":
            return _read_local(policy.confine(local_path(uri)), max_bytes)  # type: ignore[arg-type]
        if scheme == "gs":
            return _read_gcs(uri, policy, max_bytes)
        if scheme in ("http", "https"):
            return read_http(uri, policy, max_bytes)
    except ValueError as exc:  # a malformed URI: bad IPv6 brackets, port out of range, a NUL byte...
        raise InputRefusedError(f"malformed URI: {exc}") from None
    raise ImageFetchError(f"unsupported URI scheme {scheme!r} in {uri}")


def too_large(size: int, max_bytes: int) -> ImageTooLargeError:
    return ImageTooLargeError(f"{size:,} bytes exceeds the {max_bytes:,}-byte limit")


def _read_local(path: Path, max_bytes: int | None) -> bytes:
    """A regular file only (no devices, FIFOs or directories); the last component must not be a symlink."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            raise ImageFetchError(f"not a regular file: {path}")
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        with os.fdopen(fd, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            if max_bytes is not None and size > max_bytes:
                raise too_large(size, max_bytes)
            data = handle.read() if max_bytes is None else handle.read(max_bytes + 1)
            if max_bytes is not None and len(data) > max_bytes:
                raise too_large(len(data), max_bytes)
            return data
    except FileNotFoundError:
        raise ImageMissingError(f"no such file: {path}") from None
    except PermissionError:
        raise ImageFetchError(f"permission denied: {path}") from None
    except OSError as exc:
        raise ImageFetchError(f"cannot read {path}: {exc.strerror}") from None


def _read_gcs(uri: str, policy: InputPolicy, max_bytes: int | None) -> bytes:
    from google.api_core import exceptions as gexc

    from imagesearch.repository import gcs_client

    bucket, name = policy.check_gs(uri)
    blob = gcs_client().bucket(bucket).blob(name)
    try:
        blob.reload(timeout=policy.deadline_s)
        if max_bytes is not None and (blob.size or 0) > max_bytes:
            raise too_large(blob.size or 0, max_bytes)
        return blob.download_as_bytes(timeout=policy.deadline_s)
    except gexc.NotFound:
        raise ImageMissingError(f"no such object: {uri}") from None
    except gexc.GoogleAPIError as exc:
        error = ImageFetchUnavailableError if is_transient(exc) else ImageFetchError
        raise error(f"cannot read {uri}: {exc}") from None
