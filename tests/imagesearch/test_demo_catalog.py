"""The demo catalogs' builders on small stand-in package contents (the real ones are downloaded by `make setup`)."""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image

from imagesearch import demo_catalog
from tests.conftest import catalog_items, png_bytes


def test_tuxpaint_stamps_become_items_once_each(tmp_path: Path) -> None:
    stamps = tmp_path / "stamps"
    for relative, colour in (("animals/cat.png", "red"), ("animals/cat_mirror.png", "red"), ("food/apple.png", "green"),
                             ("food/apple_copy.png", "green"), ("symbols/alphabets/a.png", "blue")):
        (stamps / relative).parent.mkdir(parents=True, exist_ok=True)
        (stamps / relative).write_bytes(png_bytes(Image.new("RGB", (32, 32), colour)))
    (stamps / "animals" / "cat.txt").write_text("\nA tabby cat\n")
    items = demo_catalog.tuxpaint_items(stamps)
    assert [(item.item_id, item.title, item.category) for item in items] == [
        ("tux-animals-cat", "A tabby cat", "animals"), ("tux-food-apple", "apple", "food")]  # duplicates dropped
    assert all(1.99 <= item.price <= 199.99 and f"{item.price:.2f}".endswith(".99") for item in items)
    assert demo_catalog.tuxpaint_items(stamps) == items  # deterministic


def test_fashion_items_are_balanced_and_written_as_a_readable_catalog(tmp_path: Path) -> None:
    clothes = tmp_path / "package" / "src" / "clothes"
    clothes.mkdir(parents=True)
    for label in range(10):
        rows = [[(label * 20 + picture) % 256] * 784 for picture in range(3)] + [[0] * 10]  # the short row is skipped
        (clothes / f"{label}.json").write_text(json.dumps({"data": rows}))
    out = tmp_path / "catalog"
    items = demo_catalog.fashion_items(tmp_path / "package", out / "images", limit=25)
    assert len(items) == 25 and [item.category for item in items[:10]] == list(demo_catalog.FASHION_CLASSES)
    assert Image.open(out / "images" / "fm-3-00001.png").size == (28, 28)
    demo_catalog.write_catalog(items, out / "catalog.csv")
    read = catalog_items(out / "catalog.csv")
    assert [item.item_id for item in read] == [item.item_id for item in items]
    assert read[0].image_uri == str(out / "images" / "fm-0-00000.png")  # relative to the catalog
