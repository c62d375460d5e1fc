"""Reading bytes from the URIs a catalog may use: local paths, file://, gs:// and http(s)://."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlparse

import httpx

from imagesearch.errors import ImageFetchError, ImageFetchTimeoutError, ImageMissingError, ImageTooLargeError


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
    if urlparse(uri).scheme or uri.startswith("/"):
        return uri
    if base_path := local_path(base):
        return str((base_path.parent / uri).resolve())
    return base.rsplit("/", 1)[0] + "/" + uri


def split_gs(uri: str) -> tuple[str, str]:
    parsed = urlparse(uri)
    return parsed.netloc, parsed.path.lstrip("/")


def read_bytes(uri: str, *, max_bytes: int | None = None, timeout: float = 10.0) -> bytes:
    """The content at ``uri``; typed errors for missing, too large, timeout or other failures."""
    if (path := local_path(uri)) is not None:
        return _read_local(path, max_bytes)
    scheme = urlparse(uri).scheme
    if scheme == "gs":
        return _read_gcs(uri, max_bytes, timeout)
    if scheme in ("http", "https"):
        return _read_http(uri, max_bytes, timeout)
    raise ImageFetchError(f"unsupported URI scheme {scheme!r} in {uri}")


def _too_large(size: int, max_bytes: int) -> ImageTooLargeError:
    return ImageTooLargeError(f"{size:,} bytes exceeds the {max_bytes:,}-byte limit")


def _read_local(path: Path, max_bytes: int | None) -> bytes:
    try:
        size = path.stat().st_size
        if max_bytes is not None and size > max_bytes:
            raise _too_large(size, max_bytes)
        return path.read_bytes()
    except FileNotFoundError:
        raise ImageMissingError(f"no such file: {path}") from None
    except IsADirectoryError:
        raise ImageFetchError(f"is a directory: {path}") from None
    except PermissionError:
        raise ImageFetchError(f"permission denied: {path}") from None


def _read_gcs(uri: str, max_bytes: int | None, timeout: float) -> bytes:
    from google.api_core import exceptions as gexc

    from imagesearch.repository import gcs_client

    bucket, name = split_gs(uri)
    blob = gcs_client().bucket(bucket).blob(name)
    try:
        blob.reload(timeout=timeout)
        if max_bytes is not None and (blob.size or 0) > max_bytes:
            raise _too_large(blob.size or 0, max_bytes)
        return blob.download_as_bytes(timeout=timeout)
    except gexc.NotFound:
        raise ImageMissingError(f"no such object: {uri}") from None
    except gexc.GoogleAPIError as exc:
        raise ImageFetchError(f"cannot read {uri}: {exc}") from None


def _read_http(uri: str, max_bytes: int | None, timeout: float) -> bytes:
    try:
        with httpx.stream("GET", uri, timeout=timeout, follow_redirects=True) as response:
            if response.status_code == 404:
                raise ImageMissingError(f"HTTP 404 for {uri}")
            if response.status_code >= 400:
                raise ImageFetchError(f"HTTP {response.status_code} for {uri}")
            declared = int(response.headers.get("content-length") or 0)
            if max_bytes is not None and declared > max_bytes:
                raise _too_large(declared, max_bytes)
            chunks: list[bytes] = []
            received = 0
            for chunk in response.iter_bytes():
                received += len(chunk)
                if max_bytes is not None and received > max_bytes:
                    raise _too_large(received, max_bytes)
                chunks.append(chunk)
            return b"".join(chunks)
    except httpx.TimeoutException:
        raise ImageFetchTimeoutError(f"timed out after {timeout:g}s fetching {uri}") from None
    except httpx.HTTPError as exc:
        raise ImageFetchError(f"cannot fetch {uri}: {exc}") from None
