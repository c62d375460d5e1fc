"""The serving fixtures (one embedder, the published index as the initContainer fetches it) for localdev's tests,
and a model repository with two committed versions with the settings of a local deploy of it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from imagesearch.artifacts import committed_versions
from imagesearch.repository import open_repository
from tests.conftest import ROOT, SECOND_VERSION
from tests.serving.conftest import embedder, index_a  # noqa: F401
from tests.serving.support import cli


@pytest.fixture
def models(two_versions: Path, published_repository: tuple[Path, str]) -> Path:
    """A model repository with two committed versions."""
    assert committed_versions(open_repository(str(two_versions))) == [published_repository[1], SECOND_VERSION]
    return two_versions


@pytest.fixture
def environment(tmp_path: Path, models: Path) -> Iterator[dict[str, str]]:
    """The settings of a local deploy of ``models`` (its server stopped after)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "IMAGESEARCH_GITOPS_REPO_URL": str(tmp_path / "gitops.git"),
           "IMAGESEARCH_MODEL_REPOSITORY": str(models)}
    yield env
    cli(env, "localdev.argocd", "--state-dir", str(tmp_path / "serving"), "--stop")
