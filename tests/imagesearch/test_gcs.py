"""The process's one storage client, anonymous against the GCS emulator (STORAGE_EMULATOR_HOST)."""

from __future__ import annotations

from google.auth.credentials import AnonymousCredentials

from imagesearch.gcs import gcs_client


def test_one_anonymous_client_against_the_emulator(gcs_bucket: str) -> None:
    client = gcs_client()
    assert client is gcs_client()
    assert isinstance(client._credentials, AnonymousCredentials)
    bucket = client.bucket(gcs_bucket.removeprefix("gs://"))
    bucket.blob("hello.txt").upload_from_string(b"hello")
    assert bucket.blob("hello.txt").download_as_bytes() == b"hello"
