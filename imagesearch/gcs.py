"""The one Google Cloud Storage client of a process, shared by the model repository, image reads and stamps."""

from __future__ import annotations

import functools
import os


@functools.cache
def gcs_client():  # type: ignore[no-untyped-def]
    """A storage client; anonymous against an emulator (STORAGE_EMULATOR_HOST)."""
    from google.cloud import storage

    if os.environ.get("STORAGE_EMULATOR_HOST"):
        from google.auth.credentials import AnonymousCredentials

        return storage.Client(project=os.environ.get("GOOGLE_CLOUD_PROJECT", "local"), credentials=AnonymousCredentials())
    return storage.Client()
