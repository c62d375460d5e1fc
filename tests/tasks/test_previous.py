"""The previous version as an incremental run reuses it: its change columns and vectors, verified; refused when
built with another model or damaged."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from imagesearch.artifacts import read_manifest, version_key
from imagesearch.errors import ArtifactError
from imagesearch.index_store import EMBEDDINGS, ITEMS
from imagesearch.repository import ModelRepository, open_repository
from tasks.previous import CHANGE_COLUMNS, load_previous, previous_vectors


@pytest.fixture
def repo(tmp_path: Path, published_repository: tuple[Path, str]) -> ModelRepository:
    shutil.copytree(published_repository[0], tmp_path / "repo", ignore=shutil.ignore_patterns("runs"))
    return open_repository(str(tmp_path / "repo"))


def damage(repo: ModelRepository, version: str, name: str) -> None:
    path = Path(repo.uri) / version_key(version, name)
    path.chmod(0o644)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 1
    path.write_bytes(bytes(data))


def test_the_previous_version_loads_with_its_model(repo: ModelRepository, published_repository: tuple[Path, str]) -> None:
    version = published_repository[1]
    manifest = read_manifest(repo, version)
    previous = load_previous(repo, version, manifest.model.model_id)
    assert previous.version == version and previous.items.column_names == list(CHANGE_COLUMNS)
    assert "chelsea" in previous.items.column("item_id").to_pylist() and previous.items.num_rows == 20
    assert previous.items.column("image_stamp").null_count == 0
    with previous_vectors(repo, manifest) as vectors:
        assert vectors.shape == (20, manifest.model.dim)
    with pytest.raises(ArtifactError, match="built with model"):
        load_previous(repo, version, "another-model")


@pytest.mark.parametrize("name", [ITEMS, EMBEDDINGS])
def test_a_damaged_file_is_never_reused(repo: ModelRepository, published_repository: tuple[Path, str],
                                        name: str) -> None:
    version = published_repository[1]
    manifest = read_manifest(repo, version)
    damage(repo, version, name)
    with pytest.raises(ArtifactError, match="fails its checksum"):
        if name == ITEMS:
            load_previous(repo, version, manifest.model.model_id)
        else:
            with previous_vectors(repo, manifest):
                pass
