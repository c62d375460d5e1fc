"""The one image preprocessing function, used at index time and at query time alike."""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Literal

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from imagesearch.errors import ImageTooLargeError, ImageTooSmallError, NotAnImageError, TruncatedImageError

if TYPE_CHECKING:
    from imagesearch.settings import Settings

ImageFile.LOAD_TRUNCATED_IMAGES = False
# Pillow's global bomb guard (Image.MAX_IMAGE_PIXELS) stays on as a backstop; every call also checks its
# own, lower cap (PreprocessConfig.max_pixels) from the header, before any pixel is decoded.

IMAGENET_MEAN = (0.485, 0.456, 0.406)  # the statistics the network's weights were trained with
IMAGENET_STD = (0.229, 0.224, 0.225)
_MEAN = np.asarray(IMAGENET_MEAN, dtype=np.float32).reshape(3, 1, 1)
_STD = np.asarray(IMAGENET_STD, dtype=np.float32).reshape(3, 1, 1)
WHITE = (255, 255, 255)


@dataclass(frozen=True)
class PreprocessConfig:
    size: int = 224
    # "pad": keep the whole picture, letterboxed on white; "crop": resize shorter side, centre crop.
    fit: Literal["pad", "crop"] = "pad"
    max_pixels: int = 40_000_000
    min_side: int = 16

    def for_pipeline(self, settings: Settings) -> PreprocessConfig:
        """This size and fit with the catalog images' caps: preprocess and evaluate decode with exactly these."""
        return replace(self, max_pixels=settings.inputs.max_image_pixels, min_side=settings.inputs.min_image_side)

    def for_queries(self, settings: Settings) -> PreprocessConfig:
        """This size and fit with the search server's caps on what a query may decode."""
        return replace(self, max_pixels=settings.serving.query_max_image_pixels, min_side=settings.inputs.min_image_side)

    @property
    def tag(self) -> str:
        return f"{self.fit}{self.size}"


def decode_image(data: bytes, config: PreprocessConfig = PreprocessConfig()) -> Image.Image:
    """Bytes -> upright RGB image (transparency flattened on white), or a typed error."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageTooLargeError(f"decompression bomb refused by its pixel count: {exc}") from None
    except UnidentifiedImageError:
        raise NotAnImageError("not a recognised image format") from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise NotAnImageError(f"cannot read image header: {exc}") from None
    width, height = image.size
    if width * height > config.max_pixels:
        raise ImageTooLargeError(f"{width}x{height} exceeds the {config.max_pixels:,}-pixel limit")
    if min(width, height) < config.min_side:
        raise ImageTooSmallError(f"{width}x{height} is smaller than {config.min_side}px on a side")
    try:
        # JPEG can decode at reduced scale directly: much faster for big photos.
        image.draft("RGB", (config.size * 2, config.size * 2))
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image.load()
        image = ImageOps.exif_transpose(image)
    except OSError as exc:
        message = str(exc)
        if "truncated" in message or "broken" in message or "premature" in message.lower():
            raise TruncatedImageError(f"image data is truncated: {message}") from None
        raise NotAnImageError(f"cannot decode image: {message}") from None
    except (ValueError, SyntaxError, Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise NotAnImageError(f"cannot decode image: {exc}") from None
    return to_rgb(image)


def to_rgb(image: Image.Image) -> Image.Image:
    """Any mode (RGBA, LA, P with transparency, L, I;16, CMYK, ...) -> RGB on white."""
    if image.mode == "RGB":
        return image
    if image.mode == "P":
        image = image.convert("RGBA")
    # Query images decode under a memory budget (serving/decode_budget.py): no avoidable full-size copies here.
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
    return np.asarray(fit_image(decode_image(data, config), config), dtype=np.uint8)


def normalize(pixels: np.ndarray | Image.Image) -> np.ndarray:
    """Stage 2 of :func:`preprocess_bytes`: uint8 (..., S, S, 3) RGB -> float32 (..., 3, S, S) normalised with the
    ImageNet mean and std; one image or a batch."""
    array = np.moveaxis(np.asarray(pixels, dtype=np.float32), -1, -3) / 255.0
    return (array - _MEAN) / _STD


def preprocess_bytes(data: bytes, config: PreprocessConfig = PreprocessConfig()) -> np.ndarray:
    """The one preprocessing function: encoded bytes -> model input (3, size, size) float32.

    Query time calls it whole; index time calls its two stages in two pods (:func:`fitted_pixels`, then
    :func:`normalize`), with the config the run recorded for its model."""
    return normalize(fitted_pixels(data, config))
