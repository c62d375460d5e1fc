"""The one image preprocessing function, used at index time and at query time alike."""

from __future__ import annotations

import io
import traceback
import warnings
from typing import TYPE_CHECKING, Literal

import msgspec
import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from imagesearch.backbones import IMAGENET_MEAN, IMAGENET_STD, Normalisation
from imagesearch.errors import ImageError, ImageTooLargeError, ImageTooSmallError, NotAnImageError, TruncatedImageError

if TYPE_CHECKING:
    from imagesearch.settings import Settings

ImageFile.LOAD_TRUNCATED_IMAGES = False
# Pillow's global bomb guard (Image.MAX_IMAGE_PIXELS) stays on as a backstop; every call also checks its
# own, lower cap (PreprocessConfig.max_pixels) from the header, before any pixel is decoded.

# The Pillow plugins a query or catalog image may use: the formats the API documents (serving/image_types.py).
# Every other plugin (ICO, ICNS, JPEG 2000, PSD, ...) is refused before it decodes anything: containers such as
# ICO declare one size in their header and decode an embedded image of another.
ACCEPTED_FORMATS = ("JPEG", "PNG", "GIF", "WEBP", "BMP", "TIFF")

WHITE = (255, 255, 255)
# The caps on what a process decodes: not part of the model (its id leaves them out).
CAPS = ("max_pixels", "min_side")


class PreprocessConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """How an image becomes the network's input. An embedder's comes from its backbone's spec (size,
    normalisation: :meth:`imagesearch.embedder_config.EmbedderConfig.for_backbone`); the defaults serve decoding."""

    size: int = 224
    # "pad": keep the whole picture, letterboxed on white; "crop": resize shorter side, centre crop.
    fit: Literal["pad", "crop"] = "pad"
    max_pixels: int = 40_000_000
    min_side: int = 16
    normalisation: Normalisation = Normalisation(IMAGENET_MEAN, IMAGENET_STD)

    def for_pipeline(self, settings: Settings) -> PreprocessConfig:
        """This size and fit with the catalog images' caps: preprocess and evaluate decode with exactly these."""
        return msgspec.structs.replace(self, max_pixels=settings.inputs.max_image_pixels,
                                       min_side=settings.inputs.min_image_side)

    def for_queries(self, settings: Settings) -> PreprocessConfig:
        """This size and fit with the search server's caps on what a query may decode."""
        return msgspec.structs.replace(self, max_pixels=settings.serving.query_max_image_pixels,
                                       min_side=settings.inputs.min_image_side)

    @property
    def tag(self) -> str:
        return f"{self.fit}{self.size}"


def decode_image(data: bytes, config: PreprocessConfig = PreprocessConfig()) -> Image.Image:
    """Bytes -> upright RGB image (transparency flattened on white), or a typed error.

    Only :data:`ACCEPTED_FORMATS` are opened (every other Pillow plugin is refused before it reads a pixel), only
    the first frame of an animation is decoded, the pixel cap is checked on the declared size and again on what
    was decoded, and the pixel buffer is released on every path: no error raised here keeps it alive."""
    return decode_opened(open_image(data, config), config)


def open_image(data: bytes, config: PreprocessConfig = PreprocessConfig()) -> Image.Image:
    """The first step of :func:`decode_image`: the header only, in an accepted format and within the caps, set to
    decode at reduced scale where the codec can (JPEG). Its ``size`` is then what decoding will allocate for, so
    a caller can reserve memory before :func:`decode_opened` (serving/memory_budget.py)."""
    image = _open(data, config)
    try:
        image.draft("RGB", (config.size * 2, config.size * 2))  # JPEG: much faster and smaller for big photos
    except (OSError, ValueError) as exc:
        image.close()
        raise NotAnImageError(f"cannot read image header: {_released(exc)}") from None
    return image


def decode_opened(image: Image.Image, config: PreprocessConfig = PreprocessConfig()) -> Image.Image:
    """The second step of :func:`decode_image`: an image from :func:`open_image` -> upright RGB. Closes ``image``."""
    result: Image.Image | None = None
    try:
        _load(image)
        _check_size(image.size, config)  # what was decoded, not only what the header declared
        ImageOps.exif_transpose(image, in_place=True)  # no full-size copy
        result = to_rgb(image)
        return result
    finally:
        if result is not image:
            image.close()


def _check_size(size: tuple[int, int], config: PreprocessConfig) -> None:
    width, height = size
    if width * height > config.max_pixels:
        raise ImageTooLargeError(f"{width}x{height} exceeds the {config.max_pixels:,}-pixel limit")
    if min(width, height) < config.min_side:
        raise ImageTooSmallError(f"{width}x{height} is smaller than {config.min_side}px on a side")


def _open(data: bytes, config: PreprocessConfig) -> Image.Image:
    """The header only: an accepted format within the caps, else a typed error (raised outside any ``except``, so
    it carries no context or traceback that holds Pillow's frames)."""
    error: ImageError
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=ACCEPTED_FORMATS)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        error = ImageTooLargeError(f"decompression bomb refused by its pixel count: {_released(exc)}")
    except UnidentifiedImageError as exc:
        _released(exc)
        error = NotAnImageError(f"not an image in an accepted format ({', '.join(ACCEPTED_FORMATS)})")
    except (OSError, ValueError, SyntaxError) as exc:
        error = NotAnImageError(f"cannot read image header: {_released(exc)}")
    else:
        try:
            _check_size(image.size, config)
        except ImageError:
            image.close()
            raise
        return image
    raise error


def _load(image: Image.Image) -> None:
    """Decode the first frame."""
    error: ImageError
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image.load()
        return
    except OSError as exc:
        message = _released(exc)
        if "truncated" in message or "broken" in message or "premature" in message.lower():
            error = TruncatedImageError(f"image data is truncated: {message}")
        else:
            error = NotAnImageError(f"cannot decode image: {message}")
    except (ValueError, SyntaxError, Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        error = NotAnImageError(f"cannot decode image: {_released(exc)}")
    raise error


def _released(exc: BaseException) -> str:
    """The message of ``exc``, after clearing the frames of its traceback chain: a failed decode's frames hold
    the decoder and the pixel buffer in reference cycles that only a full garbage collection would free."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        traceback.clear_frames(current.__traceback__)
        current = current.__cause__ or current.__context__
    return str(exc)


def to_rgb(image: Image.Image) -> Image.Image:
    """Any mode (RGBA, LA, P with transparency, L, I;16, CMYK, ...) -> RGB on white."""
    if image.mode == "RGB":
        return image
    if image.mode == "P":
        image = image.convert("RGBA")
    # Query images decode under a memory budget (serving/memory_budget.py): no avoidable full-size copies here.
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image if image.mode == "RGBA" else image.convert("RGBA")
        background = Image.new("RGB", rgba.size, WHITE)
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        array = np.array(image, dtype=np.float32)  # a writable copy, even of a float image
        peak = float(array.max()) or 1.0
        array *= 255.0 / peak
        np.clip(array, 0, 255, out=array)
        image = Image.fromarray(array.astype(np.uint8), "L")
    return image.convert("RGB")


def fit_image(image: Image.Image, config: PreprocessConfig = PreprocessConfig()) -> Image.Image:
    """Resize to ``size`` x ``size``: letterboxed on white ("pad") or centre-cropped ("crop")."""
    size = config.size
    if config.fit == "crop":
        return ImageOps.fit(image, (size, size), Image.Resampling.BICUBIC)
    contained = ImageOps.contain(image, (size, size), Image.Resampling.BICUBIC)
    canvas = Image.new("RGB", (size, size), WHITE)
    canvas.paste(contained, ((size - contained.width) // 2, (size - contained.height) // 2))
    return canvas


def fitted_pixels(data: bytes, config: PreprocessConfig) -> np.ndarray:
    """Stage 1 of :func:`preprocess_bytes`: encoded bytes -> uint8 (size, size, 3), decoded, upright, RGB, fitted.

    The pipeline stores this between its preprocess and embed pods (a quarter of the float size)."""
    return fitted_opened(open_image(data, config), config)


def fitted_opened(image: Image.Image, config: PreprocessConfig) -> np.ndarray:
    """:func:`fitted_pixels` from an image :func:`open_image` returned (closes it)."""
    return np.asarray(fit_image(decode_opened(image, config), config), dtype=np.uint8)


def normalize(pixels: np.ndarray | Image.Image, config: PreprocessConfig) -> np.ndarray:
    """Stage 2 of :func:`preprocess_bytes`: uint8 (..., S, S, 3) RGB -> float32 (..., 3, S, S) normalised with the
    config's mean and std (its backbone's); one image or a batch."""
    mean = np.asarray(config.normalisation.mean, dtype=np.float32).reshape(3, 1, 1)
    std = np.asarray(config.normalisation.std, dtype=np.float32).reshape(3, 1, 1)
    array = np.moveaxis(np.asarray(pixels, dtype=np.float32), -1, -3) / 255.0
    return (array - mean) / std


def preprocess_bytes(data: bytes, config: PreprocessConfig = PreprocessConfig()) -> np.ndarray:
    """The one preprocessing function: encoded bytes -> model input (3, size, size) float32.

    Query time calls it whole; index time calls its two stages in two pods (:func:`fitted_pixels`, then
    :func:`normalize`), with the config the run recorded for its model."""
    return normalize(fitted_pixels(data, config), config)
