"""Cheap change stamps of image objects, read from the store's metadata without fetching any bytes.

A stamp is a short string that changes when the object is replaced: ``<size>:<mtime_ns>`` for a local
file, ``<generation>:<size>`` for a GCS object (one listing per folder, not one request per object).
HTTP images have no cheap stamp (``""``): for them the catalog's ``updated_at`` is the only signal.
A missing object stamps as ``"missing"``, so it is never mistaken for the unchanged image. A URI the input
policy refuses is not looked at at all (not even its metadata) and stamps as ``"refused"``: it counts as
changed, so its fetch is attempted, refused and recorded like any other bad image.
"""

from __future__ import annotations

import logging
import os
import posixpath
import stat
from collections import defaultdict
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from imagesearch import uri as uris
from imagesearch.errors import InputRefusedError
from imagesearch.input_policy import InputPolicy

log = logging.getLogger(__name__)
MISSING = "missing"
REFUSED = "refused"
LSTAT_THREADS = 8  # lstat waits on the filesystem with the GIL released: threads overlap those waits
LSTAT_BATCH = 65_536
# A local path that is absolute and already normal: no empty, "." or ".." component, no trailing slash, no NUL. Its
# folder is the text before its last slash, as pathlib would say.
_NORMAL_PATH = r"^(/[^/\x00]+)+$"
_DOTTED = r"/\.\.?(/|$)"


def local_stamp(path: str | os.PathLike[str]) -> str:
    try:
        info = os.stat(path)
    except OSError:
        return MISSING
    return f"{info.st_size}:{info.st_mtime_ns}"


def gcs_stamps(image_uris: Iterable[str]) -> dict[str, str]:
    """gs:// URI -> ``generation:size``, from one object listing per folder (``MISSING`` when absent)."""
    from google.api_core import exceptions as gexc
    from google.auth.exceptions import GoogleAuthError

    from imagesearch.gcs import gcs_client

    folders: dict[tuple[str, str], set[str]] = defaultdict(set)
    for image_uri in image_uris:
        bucket, name = uris.split_gs(image_uri)
        folders[(bucket, posixpath.dirname(name))].add(name)
    stamps: dict[str, str] = {}
    for (bucket, folder), names in folders.items():
        listed: dict[str, str] = {}
        try:
            for blob in gcs_client().list_blobs(bucket, prefix=f"{folder}/" if folder else "", delimiter="/"):
                listed[blob.name] = f"{blob.generation}:{blob.size}"
        # No listing (an API error, no credentials): these images count as changed, never as unchanged.
        except (gexc.GoogleAPIError, GoogleAuthError) as exc:
            log.warning("cannot list gs://%s/%s for change stamps (%s): their images will be fetched", bucket, folder, exc)
        for name in names:
            stamps[f"gs://{bucket}/{name}"] = listed.get(name, MISSING)
    return stamps


def allowed(image_uri: str, policy: InputPolicy) -> bool:
    try:
        policy.check_location(image_uri)
    except InputRefusedError:
        return False
    return True


def image_stamps(image_uris: list[str], policy: InputPolicy) -> list[str]:
    """The stamp of every URI, in order; only URIs the policy allows are looked at."""
    folders: dict[Path, bool] = {}
    stamps: list[str | None] = []
    remote = []
    for image_uri in image_uris:
        path = _local(image_uri, policy)
        if path is not None:
            stamps.append(_confined_stamp(path, policy, folders))
        elif not allowed(image_uri, policy):
            stamps.append(REFUSED)
        else:
            stamps.append(None)
            if image_uri.startswith("gs://"):
                remote.append(image_uri)
    listed = gcs_stamps(remote) if remote else {}
    return [listed.get(image_uri, "") if stamp is None else stamp for image_uri, stamp in zip(image_uris, stamps, strict=True)]


def _local(image_uri: str, policy: InputPolicy) -> Path | None:
    """The file behind a local URI whose scheme the policy allows (None for any other URI)."""
    try:
        return uris.local_path(image_uri) if "file" in policy.schemes else None
    except ValueError:  # malformed: the full check refuses it
        return None


def _confined_stamp(path: Path, policy: InputPolicy, folders: dict[Path, bool]) -> str:
    """The stamp of a local file, or REFUSED outside the allowed roots (then not even its metadata is read).

    A catalog's images share a few folders, so each folder is resolved once, not every file's every
    component. A file that is itself a symlink, or a path that is not a plain name in a folder, is
    resolved in full, as ``InputPolicy.confine`` does.
    """
    if path.name in ("", ".", "..") or str(path).startswith("~"):
        return local_stamp(path) if allowed(str(path), policy) else REFUSED
    folder = path.parent
    if folder not in folders:
        try:
            policy.confine(folder)
            folders[folder] = True
        except (InputRefusedError, OSError, ValueError):
            folders[folder] = False
    if not folders[folder]:
        return REFUSED
    try:
        info = os.lstat(path)
    except (OSError, ValueError):
        return MISSING
    if stat.S_ISLNK(info.st_mode):
        return local_stamp(path) if allowed(str(path), policy) else REFUSED
    return f"{info.st_size}:{info.st_mtime_ns}"


def stamp_column(image_uris: pa.Array | pa.ChunkedArray, policy: InputPolicy) -> pa.Array:
    """:func:`image_stamps` of a column, each distinct URI looked at once; the files of normal absolute paths are
    lstat-ed in threads, every other URI goes through :func:`image_stamps` itself."""
    column = image_uris.combine_chunks() if isinstance(image_uris, pa.ChunkedArray) else image_uris
    encoded = column.dictionary_encode()
    distinct = encoded.dictionary
    stamps = np.full(len(distinct), None, dtype=object)
    normal = np.zeros(len(distinct), np.bool_)
    if "file" in policy.schemes and len(distinct):
        normal = np.asarray(pc.and_(pc.match_substring_regex(distinct, _NORMAL_PATH),
                                    pc.invert(pc.match_substring_regex(distinct, _DOTTED))), np.bool_)
    paths = distinct.filter(pa.array(normal))
    if len(paths):
        folders = pc.replace_substring_regex(paths, r"/[^/]*$", "").dictionary_encode()
        confined = np.asarray([_confined(Path(folder or "/"), policy) for folder in folders.dictionary.to_pylist()])
        inside = confined[np.asarray(folders.indices)]
        found = np.full(len(paths), REFUSED, dtype=object)
        found[inside] = _lstat_stamps(paths.filter(pa.array(inside)).to_pylist(), policy)
        stamps[normal] = found
    rest = np.flatnonzero(~normal)
    if len(rest):
        stamps[rest] = image_stamps(distinct.take(pa.array(rest)).to_pylist(), policy)
    return pa.array(stamps, pa.string()).take(encoded.indices)


def _confined(folder: Path, policy: InputPolicy) -> bool:
    try:
        policy.confine(folder)
    except (InputRefusedError, OSError, ValueError):
        return False
    return True


def _lstat_stamps(paths: list[str], policy: InputPolicy) -> list[str]:
    """The stamps of files in allowed folders; a file that is itself a symlink is resolved in full."""
    def batch(start: int) -> list[str]:
        stamps = []
        for path in paths[start : start + LSTAT_BATCH]:
            try:
                info = os.lstat(path)
            except (OSError, ValueError):
                stamps.append(MISSING)
                continue
            if stat.S_ISLNK(info.st_mode):
                stamps.append(local_stamp(path) if allowed(path, policy) else REFUSED)
            else:
                stamps.append(f"{info.st_size}:{info.st_mtime_ns}")
        return stamps

    with ThreadPoolExecutor(LSTAT_THREADS) as pool:
        return [stamp for stamps in pool.map(batch, range(0, len(paths), LSTAT_BATCH)) for stamp in stamps]
