"""Typed errors shared by the pipeline and the server, and the one table that says which are worth retrying.

Every error a step can end with is **transient** (trying again later may succeed: the network, a timeout,
a 5xx or 429 answer, a lost connection, the model repository or the GitOps remote unreachable) or
**permanent** (bad input, a bad URI, a failed gate, a refused or uncommitted version, a corrupt artifact, a
missing file): :data:`RETRY` declares it, per error type, here and nowhere else. A step exits 1 for a
transient error (Airflow retries the task) and 2 for a permanent one (the task fails at once), see
:func:`tasks.cli.run`. An error instance may decide for itself with a ``transient`` attribute.
"""

from __future__ import annotations

import builtins
from enum import Enum


class ImageSearchError(Exception):
    """Base class for every error this project raises on purpose."""


class ImageError(ImageSearchError):
    """An image could not be used; ``reason`` is a short machine-readable tag."""

    reason = "invalid"


class NotAnImageError(ImageError):
    reason = "not_an_image"


class TruncatedImageError(ImageError):
    reason = "truncated"


class ImageTooLargeError(ImageError):
    reason = "too_large"


class ImageTooSmallError(ImageError):
    reason = "too_small"


class ImageFetchError(ImageError):
    reason = "fetch_failed"


class ImageFetchUnavailableError(ImageFetchError):
    """The image's server or store failed to answer (a lost connection, a 5xx or 429 answer)."""

    reason = "unavailable"


class ImageMissingError(ImageFetchError):
    reason = "missing"


class ImageFetchTimeoutError(ImageFetchError):
    reason = "timeout"


class ImageFetchTooSlowError(ImageFetchTimeoutError):
    reason = "too_slow"


class InputRefusedError(ImageFetchError):
    """The input policy refuses the URI: its scheme, host, bucket, address or local path is not allowed."""

    reason = "refused"


class ArtifactError(ImageSearchError):
    """An index version is missing, incomplete, corrupted or built for another model."""


class BackboneError(ArtifactError):
    """This image cannot embed with a backbone: unknown to its registry, its weights package missing, or a weights
    file or recorded spec other than the registry's."""


class RepositoryUnavailableError(ArtifactError):
    """The model repository did not answer, or answered with a server error, after its own retries."""


class VersionTakenError(ArtifactError):
    """The version is already committed (or being written) by another run: retrying cannot help."""


class CatalogError(ImageSearchError):
    """The catalog cannot be read at all (unknown format, missing file, no valid rows)."""


class CatalogUnavailableError(CatalogError):
    """The catalog's store did not answer in time, or answered with a server error."""


class GitOpsError(ImageSearchError):
    """The GitOps repo cannot be read or updated as asked; the message says why."""


class VersionNotCommittedError(GitOpsError, ArtifactError):
    """An index version is not committed in the model repository, so it may not be served or deployed."""


class Retry(Enum):
    TRANSIENT = "transient"
    PERMANENT = "permanent"


TRANSIENT, PERMANENT = Retry.TRANSIENT, Retry.PERMANENT
# Error type -> whether trying again may help. The most specific type of an error that is listed decides. This
# project's types and Python's are named by their class name, other libraries' as module.Class.
RETRY: dict[str, Retry] = {
    # Python's
    "ConnectionError": TRANSIENT,  # refused, reset, aborted, broken pipe
    "TimeoutError": TRANSIENT,
    "OSError": TRANSIENT,  # an I/O error of the node (disk full, EIO): another try may run elsewhere
    "FileNotFoundError": PERMANENT,
    "FileExistsError": PERMANENT,
    "IsADirectoryError": PERMANENT,
    "NotADirectoryError": PERMANENT,
    "PermissionError": PERMANENT,
    "ValueError": PERMANENT,  # bad input: a malformed URI, number, JSON or setting
    "TypeError": PERMANENT,  # a bug: the same code fails the same way again
    "LookupError": PERMANENT,
    "AttributeError": PERMANENT,
    # this project's
    "ImageSearchError": PERMANENT,
    "ImageError": PERMANENT,
    "NotAnImageError": PERMANENT,
    "TruncatedImageError": PERMANENT,
    "ImageTooLargeError": PERMANENT,
    "ImageTooSmallError": PERMANENT,
    "ImageFetchError": PERMANENT,  # an unsupported scheme, not a regular file, a 4xx answer
    "ImageFetchUnavailableError": TRANSIENT,
    "ImageMissingError": PERMANENT,
    "ImageFetchTimeoutError": TRANSIENT,
    "ImageFetchTooSlowError": TRANSIENT,
    "InputRefusedError": PERMANENT,
    "ArtifactError": PERMANENT,  # missing, corrupt, a checksum mismatch, another model
    "ModelChoiceError": PERMANENT,  # the model version asked for is not committed, of another backbone or no id
    "BackboneError": PERMANENT,  # an unknown backbone or other weights: another try runs the same image
    "RepositoryUnavailableError": TRANSIENT,
    "VersionTakenError": PERMANENT,
    "CatalogError": PERMANENT,
    "CatalogUnavailableError": TRANSIENT,
    "GitOpsError": TRANSIENT,  # the remote unreachable, a clone or push failing, pushes rejected again and again
    "VersionNotCommittedError": PERMANENT,
    "SettingsError": PERMANENT,
    "PinError": PERMANENT,
    "KustomizeError": PERMANENT,
    "StepFailed": PERMANENT,  # a gate failed, inputs are unusable (an instance may say it is transient)
    "PromotionRefused": PERMANENT,
    "DeployError": PERMANENT,
    # Google Cloud clients (GCS)
    "google.api_core.exceptions.ServerError": TRANSIENT,  # 5xx
    "google.api_core.exceptions.TooManyRequests": TRANSIENT,
    "google.api_core.exceptions.RetryError": TRANSIENT,  # the client's own retries ran out
    "google.api_core.exceptions.ClientError": PERMANENT,  # 4xx: forbidden, not found, bad request, precondition
    "google.auth.exceptions.TransportError": TRANSIENT,
    "google.auth.exceptions.DefaultCredentialsError": PERMANENT,
    "google.auth.exceptions.RefreshError": PERMANENT,
    # HTTP clients
    "requests.exceptions.ConnectionError": TRANSIENT,
    "requests.exceptions.Timeout": TRANSIENT,
    "requests.exceptions.ChunkedEncodingError": TRANSIENT,
    "requests.exceptions.InvalidURL": PERMANENT,
    "urllib3.exceptions.HTTPError": TRANSIENT,
    "httpcore.TimeoutException": TRANSIENT,
    "httpcore.NetworkError": TRANSIENT,
    "httpx.TransportError": TRANSIENT,
}
UNLISTED = TRANSIENT  # an error of no listed type (none should reach a step's end): a retry costs little
PROJECT_PACKAGES = frozenset({"imagesearch", "tasks", "serving", "localdev", "plugins", "scripts", "bench", builtins.__name__})


def _key(cls: type) -> str:
    ours = cls.__module__.split(".", 1)[0] in PROJECT_PACKAGES
    return cls.__qualname__ if ours else f"{cls.__module__}.{cls.__qualname__}"


def declared(error: BaseException) -> Retry | None:
    """What :data:`RETRY` says of ``error`` (its most specific listed type; else of its cause), or None."""
    for cls in type(error).__mro__:
        if (verdict := RETRY.get(_key(cls))) is not None:
            return verdict
    cause = error.__cause__ or (None if error.__suppress_context__ else error.__context__)
    return declared(cause) if cause is not None else None


def is_transient(error: BaseException) -> bool:
    """Whether trying again later may succeed (the error's own ``transient`` attribute, else :data:`RETRY`)."""
    own = getattr(error, "transient", None)
    if isinstance(own, bool):
        return own
    return (declared(error) or UNLISTED) is TRANSIENT
