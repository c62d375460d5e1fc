"""Cheap change stamps of image objects, read from the store's metadata without fetching any bytes.

A stamp is a short string that changes when the object is replaced: ``<size>:<mtime_ns>`` for a local
file, ``<generation>:<size>`` for a GCS object (one listing per folder, not one request per object).
HTTP images have no cheap stamp (``""``): for them the catalog's ``updated_at`` is the only signal.
A missing object stamps as ``"missing"``, so it is never mistaken for the unchanged image.
"""

from __future__ import annotations

import logging
import os
import posixpath
from collections import defaultdict
from collections.abc import Iterable

from imagesearch import uri as uris

log = logging.getLogger(__name__)
MISSING = "missing"


def local_stamp(path: str | os.PathLike[str]) -> str:
    try:
        info = os.stat(path)
    except OSError:
        return MISSING
    return f"{info.st_size}:{info.st_mtime_ns}"


def gcs_stamps(image_uris: Iterable[str]) -> dict[str, str]:
    """gs:// URI -> ``generation:size``, from one object listing per folder (``MISSING`` when absent)."""
    from google.api_core import exceptions as gexc

    from imagesearch.repository import gcs_client

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
        except gexc.GoogleAPIError as exc:  # no listing: these images are treated as changed, never as unchanged
            log.warning("cannot list gs://%s/%s for change stamps (%s): their images will be fetched", bucket, folder, exc)
        for name in names:
            stamps[f"gs://{bucket}/{name}"] = listed.get(name, MISSING)
    return stamps


def image_stamps(image_uris: list[str]) -> list[str]:
    """The stamp of every URI, in order."""
    remote = [image_uri for image_uri in image_uris if image_uri.startswith("gs://")]
    listed = gcs_stamps(remote) if remote else {}
    stamps = []
    for image_uri in image_uris:
        if image_uri in listed:
            stamps.append(listed[image_uri])
        elif (path := uris.local_path(image_uri)) is not None:
            stamps.append(local_stamp(path))
        else:
            stamps.append("")
    return stamps
