"""One interface over the model repository: a local folder (or file:// URI) or gs://bucket/prefix.

Keys are '/'-separated paths relative to the repository root. Writes are atomic per object:
a local file is written beside its target and renamed; a GCS object appears whole or not at all.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from imagesearch import uri as uris
from imagesearch.errors import ArtifactError, RepositoryUnavailableError, is_transient
from imagesearch.gcs import gcs_client

if TYPE_CHECKING:
    from imagesearch.settings import Settings

CHUNK_SIZE = 8 * 1024 * 1024
SENDFILE_CHUNK = 1 << 30
SCRATCH_PREFIX = ".scratch-"
DEFAULT_RETRY_S = 60.0  # the default of settings.storage.repository_retry_s


class ModelRepository(ABC):
    uri: str

    # Writes return True; with ``if_absent`` an existing object is left as it is and they return False.
    @abstractmethod
    def put_file(self, key: str, source: Path, *, if_absent: bool = False) -> bool: ...

    @abstractmethod
    def put_bytes(self, key: str, data: bytes, *, if_absent: bool = False) -> bool: ...

    @abstractmethod
    def get_file(self, key: str, target: Path) -> None: ...

    @abstractmethod
    def get_bytes(self, key: str) -> bytes: ...

    @abstractmethod
    def exists(self, key: str) -> bool: ...

    @abstractmethod
    def list_keys(self, prefix: str = "") -> list[str]:
        """Every key under ``prefix`` (recursively), sorted."""

    @abstractmethod
    def list_children(self, prefix: str = "") -> list[str]:
        """Names of the immediate 'folders' under ``prefix``, sorted."""

    @abstractmethod
    def delete_prefix(self, prefix: str) -> None: ...

    @abstractmethod
    def delete_key(self, key: str) -> None:
        """Remove one object; none there is no error."""

    def local_file(self, key: str) -> Path | None:
        """The file behind ``key`` when this store is a local folder (read in place, no copy); else None."""
        return None

    def move_file(self, key: str, source: Path) -> None:
        """Store ``source``, a file of :meth:`scratch_dir`, at ``key`` and consume it."""
        self.put_file(key, source)
        source.unlink()

    @contextlib.contextmanager
    def scratch_dir(self) -> Iterator[Path]:
        """A private folder, removed after, for files to :meth:`move_file` into this store."""
        with tempfile.TemporaryDirectory(prefix="imagesearch-") as name:
            yield Path(name)

    @abstractmethod
    def child(self, prefix: str) -> ModelRepository:
        """The same store rooted at ``prefix`` (used for run workspaces)."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.uri!r})"


def copy_into(reader: BinaryIO, writer: BinaryIO) -> None:
    """Copy an open file's bytes to the end of another, in the kernel (sendfile) where the file system allows:
    a version is GBs at a million items, and 2 GiB took 1.4 s here against 6.0 s through Python (warm cache)."""
    writer.flush()
    offset = 0
    try:
        while sent := os.sendfile(writer.fileno(), reader.fileno(), offset, SENDFILE_CHUNK):
            offset += sent
    except OSError:
        if offset:  # part of it was written: the writer's position is unknown, so no fallback
            raise
        reader.seek(0)
        shutil.copyfileobj(reader, writer, CHUNK_SIZE)


def _clean(key: str) -> str:
    parts = [part for part in key.strip("/").split("/") if part not in ("", ".")]
    if any(part == ".." for part in parts):
        raise ValueError(f"key {key!r} escapes the repository")
    return "/".join(parts)


PUBLISHED_FILE_MODE = 0o644


class LocalRepository(ModelRepository):
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.uri = str(self.root)

    def _path(self, key: str) -> Path:
        return self.root / _clean(key)

    def _atomic_write(self, key: str, write: callable, if_absent: bool) -> bool:  # type: ignore[valid-type]
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        try:
            # mkstemp makes it 0600: readers run as other users (the serving containers' uid 10001).
            os.fchmod(fd, PUBLISHED_FILE_MODE)
            with os.fdopen(fd, "wb") as handle:
                write(handle)
                handle.flush()
                os.fsync(handle.fileno())
            if not if_absent:
                os.replace(temp, target)
                return True
            try:  # a hard link is created atomically or not at all: the local twin of if_generation_match=0
                os.link(temp, target)
                return True
            except FileExistsError:
                return False
            finally:
                Path(temp).unlink(missing_ok=True)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise

    def put_file(self, key: str, source: Path, *, if_absent: bool = False) -> bool:
        with source.open("rb") as reader:
            return self._atomic_write(key, lambda handle: copy_into(reader, handle), if_absent)

    def put_bytes(self, key: str, data: bytes, *, if_absent: bool = False) -> bool:
        return self._atomic_write(key, lambda handle: handle.write(data), if_absent)

    def get_file(self, key: str, target: Path) -> None:
        source = self._path(key)
        if not source.is_file():
            raise ArtifactError(f"{self.uri}/{_clean(key)} does not exist")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)

    def get_bytes(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except (FileNotFoundError, IsADirectoryError):
            raise ArtifactError(f"{self.uri}/{_clean(key)} does not exist") from None

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def list_keys(self, prefix: str = "") -> list[str]:
        base = self._path(prefix)
        if not base.is_dir():
            return []
        return sorted(
            path.relative_to(self.root).as_posix()
            for path in base.rglob("*")
            if path.is_file() and not path.name.endswith(".tmp")
            and not any(part.startswith(SCRATCH_PREFIX) for part in path.relative_to(self.root).parts)
        )

    def list_children(self, prefix: str = "") -> list[str]:
        base = self._path(prefix)
        return sorted(path.name for path in base.iterdir() if path.is_dir()) if base.is_dir() else []

    def delete_prefix(self, prefix: str) -> None:
        shutil.rmtree(self._path(prefix), ignore_errors=True)

    def delete_key(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def local_file(self, key: str) -> Path | None:
        path = self._path(key)
        return path if path.is_file() else None

    def move_file(self, key: str, source: Path) -> None:
        """Renamed into place, synced first (at a million items, GBs not copied); copied from another file system."""
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        with source.open("rb") as handle:
            os.fchmod(handle.fileno(), PUBLISHED_FILE_MODE)
            os.fsync(handle.fileno())
        try:
            os.replace(source, target)
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise
            super().move_file(key, source)

    @contextlib.contextmanager
    def scratch_dir(self) -> Iterator[Path]:
        """Hidden inside this folder (never listed as keys), so that :meth:`move_file` is a rename."""
        self.root.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=SCRATCH_PREFIX, dir=self.root) as name:
            yield Path(name)

    def child(self, prefix: str) -> LocalRepository:
        return LocalRepository(self._path(prefix))


class _Exists(Exception):
    """An if-absent upload found the object there already."""


class GCSRepository(ModelRepository):
    """gs://bucket/prefix. Transient errors are retried for at most ``retry_s`` seconds per call; then a
    :class:`RepositoryUnavailableError` (transient) or, for any other failure, an :class:`ArtifactError` says which
    operation on which object failed."""

    def __init__(self, bucket: str, prefix: str = "", timeout: float = 60.0, retry_s: float = DEFAULT_RETRY_S,
                 client: Callable[[], Any] = gcs_client) -> None:
        """``client`` returns the storage client to use, called at the first request (e.g. an Airflow
        connection's, see ``plugins/hooks/model_repository.py``); by default :func:`gcs_client`'s."""
        from google.cloud.storage.retry import DEFAULT_RETRY

        self.client = client
        self.bucket_name = bucket
        self.prefix = _clean(prefix)
        self.timeout = timeout
        self.retry_s = retry_s
        self.retry = DEFAULT_RETRY.with_timeout(retry_s)
        self.uri = f"gs://{bucket}/{self.prefix}".rstrip("/")

    @contextlib.contextmanager
    def _errors(self, operation: str, key: str = "", target: Path | None = None) -> Iterator[None]:
        from google.api_core.exceptions import GoogleAPIError, NotFound

        where = f"{self.uri}/{_clean(key)}".rstrip("/")
        try:
            yield
        except NotFound:
            if target is not None:
                target.unlink(missing_ok=True)
            raise ArtifactError(f"{where} does not exist") from None
        except (GoogleAPIError, OSError, ValueError) as exc:  # requests' connection errors are OSErrors
            if target is not None:
                target.unlink(missing_ok=True)
            if is_transient(exc):
                raise RepositoryUnavailableError(f"model repository unreachable or failing: {operation} {where} failed "
                                                 f"(retried for up to {self.retry_s:g}s): {exc}") from None
            raise ArtifactError(f"model repository refused {operation} {where}: {exc}") from None

    @property
    def _bucket(self):  # type: ignore[no-untyped-def]
        return self.client().bucket(self.bucket_name)

    def _name(self, key: str) -> str:
        return "/".join(part for part in (self.prefix, _clean(key)) if part)

    def _blob(self, key: str):  # type: ignore[no-untyped-def]
        return self._bucket.blob(self._name(key), chunk_size=CHUNK_SIZE)

    @contextlib.contextmanager
    def _upload(self, key: str, if_absent: bool) -> Iterator[dict[str, object]]:
        """The upload's options; with ``if_absent`` GCS refuses (412) to replace an existing object."""
        from google.api_core.exceptions import PreconditionFailed

        with self._errors("upload", key):
            try:
                yield {"timeout": self.timeout, "retry": self.retry, **({"if_generation_match": 0} if if_absent else {})}
            except PreconditionFailed:
                raise _Exists from None

    def _put(self, key: str, upload: str, payload: object, if_absent: bool) -> bool:
        try:
            with self._upload(key, if_absent) as options:
                getattr(self._blob(key), upload)(payload, **options)
        except _Exists:
            return False
        return True

    def put_file(self, key: str, source: Path, *, if_absent: bool = False) -> bool:
        return self._put(key, "upload_from_filename", str(source), if_absent)

    def put_bytes(self, key: str, data: bytes, *, if_absent: bool = False) -> bool:
        return self._put(key, "upload_from_string", data, if_absent)

    def get_file(self, key: str, target: Path) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        with self._errors("download", key, target):
            self._blob(key).download_to_filename(str(target), timeout=self.timeout, retry=self.retry)

    def get_bytes(self, key: str) -> bytes:
        with self._errors("download", key):
            return self._blob(key).download_as_bytes(timeout=self.timeout, retry=self.retry)

    def exists(self, key: str) -> bool:
        with self._errors("look up", key):
            return bool(self._blob(key).exists(timeout=self.timeout, retry=self.retry))

    def _list_prefix(self, prefix: str) -> str:
        name = self._name(prefix)
        return f"{name}/" if name else ""

    def _list(self, prefix: str, **options: str):  # type: ignore[no-untyped-def]
        return self.client().list_blobs(
            self.bucket_name, prefix=self._list_prefix(prefix), timeout=self.timeout, retry=self.retry, **options
        )

    def list_keys(self, prefix: str = "") -> list[str]:
        start = len(self._list_prefix(""))
        with self._errors("list", prefix):
            return sorted(blob.name[start:] for blob in self._list(prefix))

    def list_children(self, prefix: str = "") -> list[str]:
        listing = self._list_prefix(prefix)
        with self._errors("list", prefix):
            iterator = self._list(prefix, delimiter="/")
            for _ in iterator:  # prefixes are filled in while pages are consumed
                pass
        return sorted(name[len(listing) :].rstrip("/") for name in iterator.prefixes)

    def delete_prefix(self, prefix: str) -> None:
        with self._errors("delete", prefix):
            for blob in self._list(prefix):
                blob.delete(timeout=self.timeout, retry=self.retry)

    def delete_key(self, key: str) -> None:
        from google.api_core.exceptions import NotFound

        with self._errors("delete", key), contextlib.suppress(NotFound):
            self._blob(key).delete(timeout=self.timeout, retry=self.retry)

    def child(self, prefix: str) -> GCSRepository:
        return GCSRepository(self.bucket_name, self._name(prefix), self.timeout, self.retry_s, self.client)


def open_repository(uri: str, *, retry_s: float = DEFAULT_RETRY_S) -> ModelRepository:
    """A repository for a local path, file:// URI or gs://bucket/prefix; ``retry_s`` bounds a GCS call's retries
    (callers pass ``settings.storage.repository_retry_s``)."""
    if uri.startswith("gs://"):
        bucket, prefix = uris.split_gs(uri)
        if not bucket:
            raise ValueError(f"no bucket in {uri!r}")
        return GCSRepository(bucket, prefix, retry_s=retry_s)
    path = uris.local_path(uri)
    if path is None:
        raise ValueError(f"unsupported model repository URI {uri!r}: use a path, file:// or gs://")
    return LocalRepository(path)


def open_model_repository(settings: Settings, uri: str | None = None) -> ModelRepository:
    """The model repository at ``uri`` (default: the configured one) with the configured GCS retry budget."""
    return open_repository(uri or settings.storage.model_repository, retry_s=settings.storage.repository_retry_s)
