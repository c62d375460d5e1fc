"""The near-duplicate transform is fair to small, dark pictures and to large, white-background ones; training's
distortions never draw a parameter the evaluation's copies use."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from imagesearch.augment import (
    EVALUATION_DISTORTIONS,
    TRAINING_RANGES,
    Distortion,
    border_colour,
    brighten,
    distort,
    near_duplicate,
    outside_training,
    scaled_size,
    training_distortions,
)


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


def test_training_draws_every_part_inside_its_ranges_and_uses_each_of_them() -> None:
    rng = np.random.default_rng(0)
    drawn = [training_distortions(rng) for _ in range(3_000)]
    for distortion in drawn:
        for parameter, value in distortion.active().items():
            assert not outside_training(parameter, value), (parameter, value)
    for parameter in TRAINING_RANGES:
        values = [distortion.active()[parameter] for distortion in drawn if parameter in distortion.active()]
        assert len(values) > 300, parameter
        for low, high in TRAINING_RANGES[parameter]:  # every interval is drawn from
            assert any(low <= value <= high for value in values), (parameter, low, high)
    assert 0.05 < np.mean([distortion.grey for distortion in drawn]) < 0.3
    assert {np.sign(distortion.rotate) for distortion in drawn} == {-1.0, 0.0, 1.0}


def test_every_evaluation_parameter_lies_outside_the_training_ranges() -> None:
    assert 7 <= len(EVALUATION_DISTORTIONS) <= 10
    assert len({distortion.name for distortion in EVALUATION_DISTORTIONS}) == len(EVALUATION_DISTORTIONS)
    for distortion in EVALUATION_DISTORTIONS:
        for parameter, value in distortion.active().items():
            assert outside_training(parameter, value), (distortion.name, parameter, value)
    # Every kind of change the training draws is evaluated at least once.
    evaluated = {parameter for distortion in EVALUATION_DISTORTIONS for parameter in distortion.active()}
    assert evaluated == set(TRAINING_RANGES)
    assert any(distortion.grey for distortion in EVALUATION_DISTORTIONS)
    assert not outside_training("crop", 0.1) and outside_training("crop", 0.05)


def test_the_first_evaluation_copy_is_todays_near_duplicate() -> None:
    canvas = Image.new("RGB", (224, 224), (255, 255, 255))
    canvas.paste((200, 30, 30), (40, 50, 180, 200))
    assert EVALUATION_DISTORTIONS[0].name == "near-duplicate"
    assert distort(canvas, EVALUATION_DISTORTIONS[0]) == near_duplicate(canvas)


def test_each_part_of_a_distortion_changes_the_picture_as_named() -> None:
    pixels = np.zeros((200, 200, 3), np.uint8)
    pixels[50:150, 60:140] = (200, 60, 20)  # a colour block on black

    def copy(**parts: object) -> np.ndarray:
        return np.asarray(Image.open(io.BytesIO(distort(Image.fromarray(pixels), Distortion(**parts)))).convert("RGB"))

    assert copy(scale=0.5).shape == (100, 100, 3)
    assert copy(scale=0.2).shape == (64, 64, 3)  # never below the minimum side
    assert copy(scale=1.0, crop=0.1).shape == (180, 180, 3)
    assert copy(scale=1.0, border=0.1).shape == (240, 240, 3)
    assert copy(scale=1.0, border=0.1)[:15].max() < 40  # filled with the picture's own black
    grey = copy(scale=1.0, grey=True).astype(int)
    assert np.abs(grey[..., 0] - grey[..., 1]).max() <= 3
    assert copy(scale=1.0, exposure=0.6)[100, 100].sum() < copy(scale=1.0)[100, 100].sum() - 60
    sharp, blurred = copy(scale=1.0), copy(scale=1.0, blur=2.0)
    assert np.abs(np.diff(blurred.astype(int), axis=1)).max() < np.abs(np.diff(sharp.astype(int), axis=1)).max()
    turned = copy(scale=1.0, rotate=3.0)
    assert (turned != sharp).any() and turned.shape == sharp.shape
