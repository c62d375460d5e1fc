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
from collections import defaultdict
from collections.abc import Iterable

from imagesearch import uri as uris
from imagesearch.errors import InputRefusedError
from imagesearch.input_policy import InputPolicy

log = logging.getLogger(__name__)
MISSING = "missing"
REFUSED = "refused"


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
    refused = {image_uri for image_uri in image_uris if not allowed(image_uri, policy)}
    remote = [image_uri for image_uri in image_uris if image_uri.startswith("gs://") and image_uri not in refused]
    listed = gcs_stamps(remote) if remote else {}
    stamps = []
    for image_uri in image_uris:
        if image_uri in refused:
            stamps.append(REFUSED)
        elif image_uri in listed:
            stamps.append(listed[image_uri])
        elif (path := uris.local_path(image_uri)) is not None:
            stamps.append(local_stamp(path))
        else:
            stamps.append("")
    return stamps
