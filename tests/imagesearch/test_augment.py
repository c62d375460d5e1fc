"""The near-duplicate transform is fair to small, dark pictures and to large, white-background ones."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from imagesearch.augment import border_colour, near_duplicate, scaled_size


def test_small_white_on_black_pictures_are_filled_black_and_kept_at_a_minimum_size() -> None:
    pixels = np.zeros((28, 28), np.uint8)
    pixels[6:22, 8:20] = 230  # a Fashion-MNIST-like garment, white on black
    picture = Image.fromarray(pixels, "L")
    assert border_colour(picture.convert("RGB")) == (0, 0, 0)
    copy = Image.open(io.BytesIO(near_duplicate(picture))).convert("L")
    assert min(copy.size) >= 60  # 64 px less the 5 % crop: never shrunk to a few pixels
    corners = np.asarray(copy)[[0, 0, -1, -1], [0, -1, 0, -1]]
    assert corners.max() < 40  # the rotation's fill is the picture's own black, not white


def test_large_pictures_scale_relatively_and_white_backgrounds_stay_white() -> None:
    assert scaled_size(1000, 800, 0.7, 64) == (700, 560)
    assert scaled_size(28, 40, 0.7, 64) == (64, 91)
    canvas = Image.new("RGB", (400, 300), (255, 255, 255))
    canvas.paste((200, 30, 30), (100, 80, 300, 220))
    copy = Image.open(io.BytesIO(near_duplicate(canvas)))
    assert copy.size == (266, 200)  # 0.7 x, less 2.5 % on each side
    assert min(copy.getpixel((0, 0))) > 230
