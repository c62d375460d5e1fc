"""The fetch-index initContainer: a verified version appears whole, or the command fails clearly and leaves nothing."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import msgspec
import pytest

from imagesearch.artifacts import COMMIT, MANIFEST, Manifest, commit_local, verify_directory
from imagesearch.backbones import BACKBONES, registered
from imagesearch.embedder_config import EmbedderConfig
from imagesearch.index_store import EMBEDDINGS
from imagesearch.manifest import ModelInfo
from imagesearch.settings import get_settings
from serving import fetch
from tests.conftest import ROOT


@pytest.fixture
def repository(published_repository: tuple[Path, str], tmp_path: Path) -> tuple[Path, str]:
    """A private model repository holding a copy of the published version (so tests may damage it)."""
    source, version = published_repository
    target = tmp_path / "models"
    shutil.copytree(source / "indexes" / version, target / "indexes" / version)
    return target, version


def env_for(repository: Path, version: str, index_dir: Path) -> dict[str, str]:
    return {"IMAGESEARCH_MODEL_REPOSITORY": str(repository), "IMAGESEARCH_INDEX_VERSION": version,
            "IMAGESEARCH_INDEX_DIR": str(index_dir)}


def fails_cleanly(repository: Path, version: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                  capsys: pytest.CaptureFixture[str]) -> str:
    """Run the fetcher in-process the way the pod does (env only); its error line, checking nothing is left behind."""
    index_dir = tmp_path / "volume" / "current"
    for name, value in env_for(repository, version, index_dir).items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()  # a new pod: settings from this environment
    assert fetch.main([]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert not index_dir.exists()
    assert not index_dir.parent.exists() or list(index_dir.parent.iterdir()) == []  # no staging leftovers
    return captured.err


def test_fetches_the_named_version_from_env_only(repository: tuple[Path, str], tmp_path: Path) -> None:
    models, version = repository
    index_dir = tmp_path / "volume" / "current"
    command = [sys.executable, "-m", "serving.fetch"]  # exactly the Deployment's initContainer command
    environ = {**os.environ, "PYTHONPATH": str(ROOT), **env_for(models, version, index_dir)}
    result = subprocess.run(command, cwd=ROOT, env=environ, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert (summary["version"], summary["items"], summary["reused"]) == (version, 20, False)
    assert verify_directory(index_dir).version == version
    assert sorted(path.name for path in index_dir.parent.iterdir()) == ["current"]

    again = subprocess.run(command, cwd=ROOT, env=environ, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and json.loads(again.stdout)["reused"] is True  # a restarted initContainer


def test_missing_commit_marker(repository: tuple[Path, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                               capsys: pytest.CaptureFixture[str]) -> None:
    models, version = repository
    (models / "indexes" / version / COMMIT).unlink()
    error = fails_cleanly(models, version, tmp_path, monkeypatch, capsys)
    assert error.startswith("fetch-index failed:") and f"index version {version} is not committed" in error


def test_corrupted_file(repository: tuple[Path, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                        capsys: pytest.CaptureFixture[str]) -> None:
    models, version = repository
    items = models / "indexes" / version / "items.parquet"
    data = bytearray(items.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, different content
    items.write_bytes(bytes(data))
    error = fails_cleanly(models, version, tmp_path, monkeypatch, capsys)
    assert f"checksum mismatch for items.parquet in version {version}" in error


def rewrite_model(directory: Path, model: ModelInfo) -> None:
    """A complete, intact version (manifest and _COMMIT agree) recording ``model``, without its embeddings file: a
    fetch that downloaded anything before checking the model would fail on that instead."""
    manifest = Manifest.decode((directory / MANIFEST).read_bytes())
    (directory / MANIFEST).write_bytes(msgspec.structs.replace(manifest, model=model).encode())
    commit_local(directory)
    (directory / EMBEDDINGS).unlink()


def test_model_mismatch(repository: tuple[Path, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                        capsys: pytest.CaptureFixture[str]) -> None:
    models, version = repository
    directory = models / "indexes" / version
    manifest = Manifest.decode((directory / MANIFEST).read_bytes())
    rewrite_model(directory, msgspec.structs.replace(manifest.model, model_id="resnet50-000000000000-avg-pad224"))
    error = fails_cleanly(models, version, tmp_path, monkeypatch, capsys)
    assert f"version {version} names model resnet50-000000000000-avg-pad224" in error
    assert "but its model.config derives efficientnet-lite0-" in error


def test_a_version_that_records_no_backbone_is_refused_with_a_word_to_rebuild_it(
        repository: tuple[Path, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """A version built before backbones were recorded (its model.config had no backbone): no silent default."""
    models, version = repository
    directory = models / "indexes" / version
    manifest = Manifest.decode((directory / MANIFEST).read_bytes())
    old_config = {key: value for key, value in manifest.model.config.items() if key != "backbone"}
    rewrite_model(directory, msgspec.structs.replace(manifest.model, config=old_config))
    error = fails_cleanly(models, version, tmp_path, monkeypatch, capsys)
    assert f"version {version} records no backbone" in error and "Rebuild the version" in error


def test_an_unknown_backbone_is_refused(repository: tuple[Path, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    models, version = repository
    lite4 = msgspec.structs.replace(registered("efficientnet-lite0"), name="efficientnet-lite4")
    rewrite_model(models / "indexes" / version, EmbedderConfig.for_backbone(lite4).model_info())
    error = fails_cleanly(models, version, tmp_path, monkeypatch, capsys)
    assert "unknown backbone 'efficientnet-lite4': this image knows efficientnet-lite0, efficientnet-lite1" in error


def test_other_weights_than_the_registry_s_are_refused(repository: tuple[Path, str], tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    models, version = repository
    lite0 = registered("efficientnet-lite0")
    other = msgspec.structs.replace(lite0, weights=msgspec.structs.replace(lite0.weights, sha256="ab" * 32))
    rewrite_model(models / "indexes" / version, EmbedderConfig.for_backbone(other).model_info())
    error = fails_cleanly(models, version, tmp_path, monkeypatch, capsys)
    assert (f"version {version} was embedded with efficientnet-lite0 weights of sha256 {'ab' * 32}; this image's "
            f"efficientnet-lite0 has {lite0.weights.sha256}") in error


def test_a_registered_backbone_whose_package_is_not_installed_is_refused(
        repository: tuple[Path, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    models, version = repository
    lite0 = registered("efficientnet-lite0")
    weights = msgspec.structs.replace(lite0.weights, package="efficientnet-lite9-pytorch-model")
    lite9 = msgspec.structs.replace(lite0, name="efficientnet-lite9", weights=weights)
    monkeypatch.setitem(BACKBONES, lite9.name, lite9)  # an image whose registry names it but lacks the package
    rewrite_model(models / "indexes" / version, EmbedderConfig.for_backbone(lite9).model_info())
    error = fails_cleanly(models, version, tmp_path, monkeypatch, capsys)
    assert "backbone efficientnet-lite9: its weights package efficientnet-lite9-pytorch-model==0.1.0 is not installed" \
        in error


def test_an_installed_weights_file_of_another_checksum_is_refused(
        repository: tuple[Path, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """The registry and the manifest agree, but the file this image installed is not the one they name."""
    models, version = repository
    lite0 = registered("efficientnet-lite0")
    pinned = msgspec.structs.replace(lite0, weights=msgspec.structs.replace(lite0.weights, sha256="cd" * 32))
    monkeypatch.setitem(BACKBONES, lite0.name, pinned)
    rewrite_model(models / "indexes" / version, EmbedderConfig.for_backbone(pinned).model_info())
    error = fails_cleanly(models, version, tmp_path, monkeypatch, capsys)
    assert f"has sha256 {lite0.weights.sha256}, the spec says {'cd' * 32}" in error


def test_no_version_or_a_malformed_one(repository: tuple[Path, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    models, _ = repository
    assert "IMAGESEARCH_INDEX_VERSION is empty" in fails_cleanly(models, "", tmp_path, monkeypatch, capsys)
    assert "invalid index version '../etc'" in fails_cleanly(models, "../etc", tmp_path, monkeypatch, capsys)
