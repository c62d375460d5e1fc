from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from imagesearch.backbones import registered
from imagesearch.catalog import serialize_catalog
from imagesearch.embedder import Embedder
from imagesearch.embedder_config import EmbedderConfig
from imagesearch.preprocess import normalize
from imagesearch.settings import Settings
from serving.metrics import Metrics
from serving.service import SearchService
from tasks.workspace import Workspace
from tests.conftest import catalog_items, jpeg_bytes, photo
from tests.serving.hostile_inputs import ico_with_png
from tests.tasks.conftest import run_step


def catalog_with_bad_images(folder: Path, photo_catalog: Path) -> Path:
    items = catalog_items(photo_catalog)[:8]
    bad = {
        items[0].item_id: ("missing.png", None),
        items[1].item_id: ("truncated.jpg", jpeg_bytes(photo("astronaut"))[:3000]),
        items[2].item_id: ("icon.png", ico_with_png(256)),  # a container the server refuses too: same decoder
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
    result = run_step("preprocess", workspace, "--shard", "0")
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
    result = run_step("preprocess", workspace, "--shard", "0")
    assert result.code == 1  # retryable: missing images may come back
    assert "4 of 8 images failed (50% > 25%)" in result.stderr
    assert Workspace(str(workspace)).exists("preprocess/00000/failures.jsonl")  # the evidence is kept


def test_huge_file_is_refused_by_size(tmp_path: Path, photo_catalog: Path, monkeypatch) -> None:
    monkeypatch.setenv("IMAGESEARCH_MAX_IMAGE_BYTES", "50000")
    monkeypatch.setenv("IMAGESEARCH_MAX_FAILURE_RATIO", "1")
    workspace = tmp_path / "ws"
    run_step("snapshot", workspace, "--catalog", str(photo_catalog), "--repository", str(tmp_path / "repo"), "--limit", "4")
    result = run_step("preprocess", workspace, "--shard", "0")
    assert result.code == 0 and result.summary["failure_reasons"].get("too_large", 0) >= 1


def test_index_time_and_query_time_make_identical_tensors_from_the_recorded_config(tmp_path: Path,
                                                                                    photo_catalog: Path) -> None:
    """The same bytes through the pipeline (preprocess pod, then embed's normalisation) and through the search
    service give identical model inputs, with the preprocessing the run recorded for its model (not defaults)."""
    workspace = Workspace(str(tmp_path / "ws"))
    assert run_step("snapshot", workspace.uri, "--catalog", str(photo_catalog), "--repository", str(tmp_path / "repo"),
                    "--limit", "4").code == 0
    recorded = EmbedderConfig.for_backbone(registered("efficientnet-lite0"), fit="crop", pooling="avg", size=160)
    info = workspace.run_info()
    # snapshot records the model of new runs (IMAGESEARCH_BACKBONE, unset here)
    assert EmbedderConfig.from_dict(info["embedder"]) == EmbedderConfig.for_settings(Settings.from_env({}))
    workspace.write_json("snapshot/run.json", {**info, "embedder": recorded.to_dict(), "model_id": recorded.model_id})
    assert run_step("preprocess", workspace.uri, "--shard", "0").code == 0
    assert run_step("embed", workspace.uri, "--shard", "0", "--device", "cpu").code == 0

    records = workspace.read_jsonl("preprocess/00000/items.jsonl")
    index_inputs = normalize(workspace.read_array("preprocess/00000/pixels.npz"), recorded.preprocess)
    assert index_inputs.shape == (4, 3, 160, 160)
    embedder = Embedder(recorded, device="cpu")
    service = SearchService(Settings.from_env(), embedder, Metrics())
    query_inputs = np.stack([service.model_input(Path(record["image_uri"]).read_bytes()) for record in records])
    assert np.array_equal(index_inputs, query_inputs)
    # And the vectors the embed step stored are the ones a query with those bytes gets.
    assert workspace.read_json("embed/00000/model.json")["model_id"] == embedder.model_id == recorded.model_id
    np.testing.assert_allclose(workspace.read_array("embed/00000/embeddings.npy"), embedder.embed_arrays(query_inputs),
                               atol=1e-5)
