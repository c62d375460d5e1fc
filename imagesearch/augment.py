"""The realistic near-duplicate transformation used to evaluate search quality."""

from __future__ import annotations

import io

from PIL import Image, ImageEnhance

from imagesearch.preprocess import WHITE, to_rgb


def near_duplicate(
    image: Image.Image,
    scale: float = 0.7,
    crop: float = 0.05,
    rotate: float = 5.0,
    brightness: float = 1.15,
    jpeg_quality: int = 60,
) -> bytes:
    """Resize, crop the borders, rotate, brighten and JPEG-recompress: a re-uploaded copy of a photo."""
    picture = to_rgb(image)
    size = (max(1, round(picture.width * scale)), max(1, round(picture.height * scale)))
    picture = picture.resize(size, Image.Resampling.BICUBIC)
    dx, dy = round(picture.width * crop / 2), round(picture.height * crop / 2)
    picture = picture.crop((dx, dy, picture.width - dx, picture.height - dy))
    picture = picture.rotate(rotate, resample=Image.Resampling.BICUBIC, fillcolor=WHITE)
    picture = ImageEnhance.Brightness(picture).enhance(brightness)
    buffer = io.BytesIO()
    picture.save(buffer, "JPEG", quality=jpeg_quality)
    return buffer.getvalue()
