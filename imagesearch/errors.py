"""Typed errors shared by the pipeline and the server."""


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


class VersionTakenError(ArtifactError):
    """The version is already committed (or being written) by another run: retrying cannot help."""


class CatalogError(ImageSearchError):
    """The catalog cannot be read at all (unknown format, missing file, no valid rows)."""
