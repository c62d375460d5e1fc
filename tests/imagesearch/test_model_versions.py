"""Model versions in a real repository folder and a GCS emulator bucket: written, sealed, published with ``_COMMIT``
last, immutable, fetched and verified; and which one an index run chooses (param > setting > pin > newest gated)."""

from __future__ import annotations

from pathlib import Path

import pytest

from imagesearch import model_versions
from imagesearch.artifacts import INDEXES, MODELS, committed_versions, seal, version_key
from imagesearch.errors import ArtifactError, VersionTakenError
from imagesearch.manifest import COMMIT, ModelInfo
from imagesearch.pins import Pin, Reverted
from imagesearch.projection import PROJECTION, load_projection
from imagesearch.repository import ModelRepository, open_repository
from tests.imagesearch import model_support
from tests.imagesearch.model_support import head

BACKBONE = ModelInfo("efficientnet-lite0", "ab" * 32, "backbone-a", 24)
OTHER_BACKBONE = ModelInfo("efficientnet-lite1", "cd" * 32, "backbone-b", 24)


def publish_version(repo: ModelRepository, root: Path, version: str, *, passed: bool = True, seed: int = 1,
                    backbone: ModelInfo = BACKBONE) -> None:
    model_support.publish_version(repo, root, version, backbone, passed=passed, seed=seed)


@pytest.fixture(params=["local", "gcs"])
def repo(request: pytest.FixtureRequest, tmp_path: Path) -> ModelRepository:
    if request.param == "local":
        return open_repository(str(tmp_path / "repo"))
    return open_repository(request.getfixturevalue("gcs_bucket") + "/repo")


def test_a_model_version_is_published_under_models_and_fetched_verified(repo: ModelRepository, tmp_path: Path) -> None:
    publish_version(repo, tmp_path / "build", "20260105T000000Z")
    assert committed_versions(repo, MODELS) == ["20260105T000000Z"] and committed_versions(repo, INDEXES) == []
    assert repo.exists(version_key("20260105T000000Z", COMMIT, MODELS))
    (manifest,) = model_versions.versions(repo)
    assert manifest.model.model_id == "backbone-a" and manifest.training["params"] == {"epochs": 3}
    assert manifest.training["projection"]["projection_id"] == head(1).projection_id
    assert sorted(entry.path for entry in manifest.files) == ["metrics.json", PROJECTION]
    path = model_versions.fetch_projection(repo, "20260105T000000Z", "backbone-a", tmp_path / "fetched")
    assert load_projection(path).projection_id == head(1).projection_id
    with pytest.raises(ArtifactError, match="built with model backbone-a"):
        model_versions.fetch_projection(repo, "20260105T000000Z", "backbone-b", tmp_path / "other")


def test_model_versions_are_immutable(repo: ModelRepository, tmp_path: Path) -> None:
    publish_version(repo, tmp_path / "build", "20260105T000000Z")
    assert model_versions.publish(repo, tmp_path / "build" / "20260105T000000Z")[1] is False  # the same: a no-op
    with pytest.raises(VersionTakenError, match="model version 20260105T000000Z is already"):
        publish_version(repo, tmp_path / "again", "20260105T000000Z", seed=2)
    path = model_versions.fetch_projection(repo, "20260105T000000Z", "backbone-a", tmp_path / "fetched")
    assert load_projection(path).projection_id == head(1).projection_id


def test_choice_param_then_setting_then_pin_then_newest_gated(repo: ModelRepository, tmp_path: Path) -> None:
    assert model_versions.choose(repo, "backbone-a") == model_versions.ModelChoice(
        None, "no gated model version for backbone-a")
    publish_version(repo, tmp_path, "20260105T000000Z", seed=1)
    publish_version(repo, tmp_path, "20260106T000000Z", seed=2)
    publish_version(repo, tmp_path, "20260107T000000Z", seed=3, passed=False)  # failed its gate: never chosen
    publish_version(repo, tmp_path, "20260108T000000Z", seed=4, backbone=OTHER_BACKBONE)  # another backbone's
    assert model_versions.choose(repo, "backbone-a").version == "20260106T000000Z"
    assert model_versions.choose(repo, "backbone-b").version == "20260108T000000Z"
    model_versions.write_pin(repo, Pin("20260105T000000Z", "head 06 hurts shoes", "ops@host", "2026-01-09"))
    pinned = model_versions.choose(repo, "backbone-a")
    assert pinned.version == "20260105T000000Z" and pinned.reason.startswith("pinned: pinned to 20260105T000000Z")
    assert model_versions.choose(repo, "backbone-a", setting="20260106T000000Z").version == "20260106T000000Z"
    assert model_versions.choose(repo, "backbone-a", "none", "20260106T000000Z").version is None
    assert model_versions.choose(repo, "backbone-a", "20260107T000000Z", "none").version == "20260107T000000Z"
    model_versions.remove_pin(repo)
    model_versions.remove_pin(repo)  # none there: no error
    model_versions.add_reverted(repo, [Reverted("20260106T000000Z", "bad", "ops@host", "2026-01-09")])
    assert model_versions.choose(repo, "backbone-a").version == "20260105T000000Z"  # a reverted one is skipped


@pytest.mark.parametrize(("given", "error"), [
    ("20260108T000000Z", "trained on backbone-b's features; this run embeds with backbone-a"),
    ("20260109T000000Z", "not committed"),
    ("../indexes", "invalid index version"),
])
def test_an_unusable_choice_is_refused(tmp_path: Path, given: str, error: str) -> None:
    repo = open_repository(str(tmp_path / "repo"))
    publish_version(repo, tmp_path, "20260108T000000Z", backbone=OTHER_BACKBONE)
    with pytest.raises(model_versions.ModelChoiceError, match=error):
        model_versions.choose(repo, "backbone-a", given)


def test_a_metrics_file_of_anything_but_numbers_is_refused(tmp_path: Path) -> None:
    repo = open_repository(str(tmp_path / "repo"))
    directory = tmp_path / "20260105T000000Z"
    manifest = model_versions.write_version(
        directory, version="20260105T000000Z", created_at="2026-01-01T00:00:00+00:00", projection=head(1),
        backbone=BACKBONE, training={}, metrics={"a": 1.0}, gate={"passed": True}, item_count=1)
    (directory / "metrics.json").write_text('{"a": "rm -rf"}')
    seal(directory, manifest)  # listed with its checksum: only its content is wrong
    model_versions.publish(repo, directory)
    with pytest.raises(ArtifactError, match=r"metrics\.json: is not a JSON object of finite numbers"):
        model_versions.fetch_projection(repo, "20260105T000000Z", "backbone-a", tmp_path / "fetched")
