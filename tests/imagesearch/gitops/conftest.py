"""Fixtures of the GitOps package's tests: three committed versions and a bootstrapped local GitOps repo."""

from __future__ import annotations

from pathlib import Path

import pytest

from imagesearch import gitops
from imagesearch.repository import ModelRepository
from tests.gitops.support import V1, V2, V3, bootstrapped, committed_versions


@pytest.fixture
def models(tmp_path: Path) -> ModelRepository:
    return committed_versions(tmp_path / "models", V1, V2, V3)


@pytest.fixture
def config(tmp_path: Path, models: ModelRepository) -> gitops.GitOpsConfig:
    return bootstrapped(tmp_path, models.uri)
