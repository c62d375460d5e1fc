"""The near-duplicate transform is fair to small, dark pictures and to large, white-background ones."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from imagesearch.augment import border_colour, brighten, near_duplicate, scaled_size


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


def test_brightening_burns_out_no_highlight_and_keeps_black_and_white() -> None:
    ramp = np.tile(np.arange(256, dtype=np.uint8), (4, 1))  # every grey level, dark to white
    brightened = np.asarray(brighten(Image.fromarray(ramp, "L"), 1.15))[0].astype(int)
    assert brightened[0] == 0 and brightened[255] == 255
    assert brightened[128] == round(128 * 1.15)  # mid-grey is brightened by the gain
    assert (np.diff(brightened) >= 0).all() and (brightened >= np.arange(256)).all()
    # The light greys of a white-on-black garment keep their detail: a linear gain of 1.15 would make all of
    # 222..255 one white.
    assert len(set(brightened[222:].tolist())) > 25
    colour = Image.new("RGB", (2, 2), (40, 120, 250))
    assert brighten(colour, 1.15).getpixel((0, 0)) == tuple(brightened[[40, 120, 250]].tolist())
