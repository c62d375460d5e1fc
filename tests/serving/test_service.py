"""The search service without HTTP: not ready until an index is swapped in, only version folders load, and queries
are preprocessed as the pipeline did, with the server's own caps."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import anyio
import numpy as np
import pytest
from PIL import Image

import serving.service
from imagesearch.embedder import Embedder
from imagesearch.errors import ArtifactError, ImageTooLargeError, ImageTooSmallError
from imagesearch.preprocess import preprocess_bytes
from imagesearch.settings import Settings
from serving.errors import NotReadyError, UnknownItemError
from serving.metrics import Metrics
from serving.search import Filters
from serving.service import SearchService
from tests.conftest import png_bytes

VERSION_A = "20260101T000000Z"


def test_not_ready_then_serving_a_swapped_in_version(tmp_path: Path, index_a: Path, embedder: Embedder) -> None:
    root = tmp_path / "indexes"
    shutil.copytree(index_a, root / VERSION_A)
    service = SearchService(Settings.from_env({"IMAGESEARCH_INDEX_DIR": str(root / "current")}), embedder, Metrics())
    with pytest.raises(NotReadyError):
        service.index()

    async def scenario() -> None:
        await service.start()
        try:
            with pytest.raises(ArtifactError, match=r"is not <index root>/<version>"):
                await service.swap_index(tmp_path)
            loaded, previous = await service.swap_index(root / VERSION_A)
            assert (loaded.version, previous) == (VERSION_A, None)
            assert service.info().version == VERSION_A
            similar = await service.similar("chelsea", 1, Filters())
            assert [hit.item_id for hit in similar.results] == ["chelsea-mirror"]
            with pytest.raises(UnknownItemError):
                await service.similar("nope", 1, Filters())
        finally:
            await service.stop()

    anyio.run(scenario)


def test_query_images_use_the_models_preprocessing_with_the_servers_caps(embedder: Embedder) -> None:
    settings = Settings.from_env({"IMAGESEARCH_QUERY_MAX_IMAGE_PIXELS": "10000", "IMAGESEARCH_MIN_IMAGE_SIDE": "20"})
    service = SearchService(settings, embedder, Metrics())
    picture = png_bytes(Image.new("RGB", (80, 60), "orange"))
    assert np.array_equal(service.model_input(picture), preprocess_bytes(picture, embedder.config.preprocess))
    with pytest.raises(ImageTooLargeError):
        service.model_input(png_bytes(Image.new("RGB", (101, 100))))
    with pytest.raises(ImageTooSmallError):
        service.model_input(png_bytes(Image.new("RGB", (19, 100))))


def test_a_version_serves_before_its_category_indexes_are_built(
        tmp_path: Path, index_a: Path, index_b: Path, embedder: Embedder, monkeypatch: pytest.MonkeyPatch) -> None:
    """At a million items the category indexes take minutes: they are built after the swap, in the background,
    and a build for a version that is no longer served stops."""
    release, calls = threading.Event(), []
    real_build = serving.service.build_category_indexes

    def held_build(index, max_rows, wanted, budget_bytes):  # type: ignore[no-untyped-def]
        release.wait(30)
        calls.append((index.version, wanted()))
        assert budget_bytes > 0  # the container's limit (or this machine's memory) less the server's RSS
        return real_build(index, max_rows, wanted, budget_bytes)

    monkeypatch.setattr(serving.service, "build_category_indexes", held_build)
    root = tmp_path / "indexes"
    for index in (index_a, index_b):
        shutil.copytree(index, root / index.name)
    service = SearchService(Settings.from_env({"IMAGESEARCH_INDEX_DIR": str(root / "current")}), embedder, Metrics())

    async def scenario() -> None:
        await service.start()
        try:
            await service.swap_index(root / index_a.name)
            similar = await service.similar("chelsea", 1, Filters(category=service.index().categories[0]))
            assert similar.version == VERSION_A and not calls  # served while the build still waits
            await service.swap_index(root / index_b.name)
        finally:
            await service.stop()

    anyio.run(scenario)
    release.set()
    for thread in [t for t in threading.enumerate() if t.name.startswith("category-indexes-")]:
        thread.join(30)
    assert sorted(calls) == sorted([(VERSION_A, False), (index_b.name, True)])
