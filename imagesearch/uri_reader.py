"""Reading the bytes behind a catalog URI (local path, file://, gs://, http(s)://) as the input policy allows."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from imagesearch import uri as uris
from imagesearch.errors import (
    ImageFetchError,
    ImageFetchUnavailableError,
    ImageMissingError,
    InputRefusedError,
    is_transient,
)
from imagesearch.gcs import gcs_client
from imagesearch.http_fetch import read_http
from imagesearch.input_policy import InputPolicy


def read_bytes(uri: str, policy: InputPolicy, *, max_bytes: int | None = None) -> bytes:
    """The content at ``uri`` if ``policy`` allows it; typed errors for refused, missing, too large, timeout."""
    try:
        scheme = policy.check_scheme(uri)
        if scheme == "file":
            return _read_local(policy.confine(uris.local_path(uri)), max_bytes)  # type: ignore[arg-type]
        if scheme == "gs":
            return _read_gcs(uri, policy, max_bytes)
        if scheme in ("http", "https"):
            return read_http(uri, policy, max_bytes)
    except (ValueError, TypeError) as exc:  # a malformed URI: bad IPv6 brackets, port out of range, a NUL byte...
        raise InputRefusedError(f"malformed URI: {exc}") from None
    raise ImageFetchError(f"unsupported URI scheme {scheme!r} in {uri}")


def _read_local(path: Path, max_bytes: int | None) -> bytes:
    """A regular file only (no devices, FIFOs or directories); the last component must not be a symlink."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            raise ImageFetchError(f"not a regular file: {path}")
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        with os.fdopen(fd, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            if max_bytes is not None and size > max_bytes:
                raise uris.too_large(size, max_bytes)
            data = handle.read() if max_bytes is None else handle.read(max_bytes + 1)
            if max_bytes is not None and len(data) > max_bytes:
                raise uris.too_large(len(data), max_bytes)
            return data
    except FileNotFoundError:
        raise ImageMissingError(f"no such file: {path}") from None
    except PermissionError:
        raise ImageFetchError(f"permission denied: {path}") from None
    except OSError as exc:
        raise ImageFetchError(f"cannot read {path}: {exc.strerror}") from None


def _read_gcs(uri: str, policy: InputPolicy, max_bytes: int | None) -> bytes:
    from google.api_core import exceptions as gexc

    bucket, name = policy.check_gs(uri)
    blob = gcs_client().bucket(bucket).blob(name)
    try:
        blob.reload(timeout=policy.deadline_s)
        if max_bytes is not None and (blob.size or 0) > max_bytes:
            raise uris.too_large(blob.size or 0, max_bytes)
        return blob.download_as_bytes(timeout=policy.deadline_s)
    except gexc.NotFound:
        raise ImageMissingError(f"no such object: {uri}") from None
    except gexc.GoogleAPIError as exc:
        error = ImageFetchUnavailableError if is_transient(exc) else ImageFetchError
        raise error(f"cannot read {uri}: {exc}") from None
