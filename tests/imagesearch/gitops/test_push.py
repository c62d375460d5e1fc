"""The push protocol against real concurrent pushes: remade on the new tip, bounded retries, never backwards."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from imagesearch import gitops, kustomize
from imagesearch.repository import ModelRepository
from tests.gitops.support import V1, V2, V3, bootstrapped, clone, log, rendered_version


def test_concurrent_push_of_another_overlay_is_rebased(tmp_path: Path, config: gitops.GitOpsConfig,
                                                        models: ModelRepository) -> None:
    other = clone(config, tmp_path / "other")

    def race(attempt: int) -> None:
        if attempt == 1:  # between our fetch and our push, someone promotes V1 to production
            other.path.joinpath("gitops/overlays/production/kustomization.yaml").write_text(
                kustomize.set_literal(other.path.joinpath("gitops/overlays/production/kustomization.yaml").read_text(),
                                      kustomize.VERSION_KEY, V1))
            other.git("commit", "-qam", "Promote to production")
            assert other.push()

    result = gitops.bump(config, V2, models, before_push=race)
    assert (result.attempts, result.changed) == (2, True)
    assert log(config, tmp_path / "clone")[:2] == [f"Deploy index {V2} to local", "Promote to production"]
    assert rendered_version(config, tmp_path / "clone")[0] == V2
    assert rendered_version(config, tmp_path / "clone", "gitops/overlays/production")[0] == V1


def test_concurrent_bump_of_the_same_overlay_is_redone_on_top(tmp_path: Path, config: gitops.GitOpsConfig,
                                                              models: ModelRepository) -> None:
    rival = tmp_path / "rival"

    def race(attempt: int) -> None:
        if attempt == 1:  # a conflicting change to the same line: the rebase cannot apply ours as is
            gitops.bump(config, V1, models, workdir=rival)

    result = gitops.bump(config, V2, models, before_push=race)
    assert (result.attempts, result.previous) == (2, V1)
    assert log(config, tmp_path / "clone")[:2] == [f"Deploy index {V2} to local", f"Deploy index {V1} to local"]
    assert rendered_version(config, tmp_path / "clone")[0] == V2

    # And when someone else pushed the very version we were pushing, nothing is left to commit.
    def same(attempt: int) -> None:
        if attempt == 1:
            gitops.bump(dataclasses.replace(config, author_name="Someone Else"), V3, models, workdir=rival)

    moot = gitops.bump(config, V3, models, before_push=same)
    assert (moot.changed, moot.attempts) == (False, 1)
    assert log(config, tmp_path / "clone").count(f"Deploy index {V3} to local") == 1


def test_a_run_that_loses_the_race_to_a_newer_version_does_not_roll_it_back(
    tmp_path: Path, config: gitops.GitOpsConfig, models: ModelRepository
) -> None:
    def newer(attempt: int) -> None:
        if attempt == 1:
            gitops.bump(config, V3, models, workdir=tmp_path / "rival")

    stale = gitops.bump(config, V2, models, before_push=newer)
    assert (stale.changed, stale.previous) == (False, V3)
    assert rendered_version(config, tmp_path / "clone")[0] == V3
    assert log(config, tmp_path / "clone")[0] == f"Deploy index {V3} to local"


def test_push_gives_up_after_the_configured_retries(tmp_path: Path, models: ModelRepository) -> None:
    config = bootstrapped(tmp_path, models.uri, push_retries=2)
    rival = dataclasses.replace(config, overlay="gitops/overlays/staging")
    versions = iter((V1, V2, V3))

    def always(attempt: int) -> None:  # someone pushes to the branch before each of our pushes
        gitops.bump(rival, next(versions), models, workdir=tmp_path / "rival")

    with pytest.raises(gitops.GitOpsError, match="rejected 3 times"):
        gitops.bump(config, V2, models, before_push=always)
    assert rendered_version(config, tmp_path / "clone")[0] != V2
