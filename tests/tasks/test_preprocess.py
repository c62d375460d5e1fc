from __future__ import annotations

from pathlib import Path

from PIL import Image

from imagesearch.catalog import read_catalog, serialize_catalog
from tasks.workspace import Workspace
from tests.conftest import jpeg_bytes, photo
from tests.tasks.conftest import run_step


def catalog_with_bad_images(folder: Path, photo_catalog: Path) -> Path:
    items = read_catalog(str(photo_catalog)).items[:8]
    bad = {
        items[0].item_id: ("missing.png", None),
        items[1].item_id: ("truncated.jpg", jpeg_bytes(photo("astronaut"))[:3000]),
        items[2].item_id: ("notes.png", b"this is a text file"),
        items[3].item_id: ("tiny.png", None),
    }
    Image.new("RGB", (4, 4)).save(folder / "tiny.png")
    for name, data in bad.values():
        if data is not None:
            (folder / name).write_bytes(data)
    rows = [item.__class__(**{**item.__dict__, "image_uri": str(folder / bad[item.item_id][0])}) if item.item_id in bad else item
            for item in items]
    catalog = folder / "catalog.csv"
    catalog.write_bytes(serialize_catalog(rows, "csv"))
    return catalog


def test_bad_images_are_recorded_and_the_shard_completes(tmp_path: Path, photo_catalog: Path, monkeypatch) -> None:
    monkeypatch.setenv("IMAGESEARCH_MAX_FAILURE_RATIO", "0.5")
    catalog = catalog_with_bad_images(tmp_path, photo_catalog)
    workspace = tmp_path / "ws"
    assert run_step("snapshot", workspace, "--catalog", str(catalog), "--repository", str(tmp_path / "repo")).code == 0
    result = run_step("preprocess", workspace, "--shard", "0", "--repository", str(tmp_path / "repo"))
    assert result.code == 0, result.stderr
    assert result.summary["ok"] == 4 and result.summary["failed"] == 4
    assert result.summary["failure_reasons"] == {"missing": 1, "truncated": 1, "not_an_image": 1, "too_small": 1}
    failures = Workspace(str(workspace)).read_jsonl("preprocess/00000/failures.jsonl")
    assert {f["reason"] for f in failures} == {"missing", "truncated", "not_an_image", "too_small"}
    assert all(f["message"] for f in failures)
    assert Workspace(str(workspace)).read_array("preprocess/00000/pixels.npz").shape == (4, 224, 224, 3)


def test_failure_ratio_gate_fails_the_shard(tmp_path: Path, photo_catalog: Path, monkeypatch) -> None:
    monkeypatch.setenv("IMAGESEARCH_MAX_FAILURE_RATIO", "0.25")
    catalog = catalog_with_bad_images(tmp_path, photo_catalog)
    workspace = tmp_path / "ws"
    run_step("snapshot", workspace, "--catalog", str(catalog), "--repository", str(tmp_path / "repo"))
    result = run_step("preprocess", workspace, "--shard", "0", "--repository", str(tmp_path / "repo"))
    assert result.code == 1  # retryable: missing images may come back
    assert "4 of 8 images failed (50% > 25%)" in result.stderr
    assert Workspace(str(workspace)).exists("preprocess/00000/failures.jsonl")  # the evidence is kept


def test_huge_file_is_refused_by_size(tmp_path: Path, photo_catalog: Path, monkeypatch) -> None:
    monkeypatch.setenv("IMAGESEARCH_MAX_IMAGE_BYTES", "50000")
    monkeypatch.setenv("IMAGESEARCH_MAX_FAILURE_RATIO", "1")
    workspace = tmp_path / "ws"
    run_step("snapshot", workspace, "--catalog", str(photo_catalog), "--repository", str(tmp_path / "repo"), "--limit", "4")
    result = run_step("preprocess", workspace, "--shard", "0", "--repository", str(tmp_path / "repo"))
    assert result.code == 0 and result.summary["failure_reasons"].get("too_large", 0) >= 1
