"""Bump, rollback and unpin on real git repos, rendered with real kustomize: what may change the version."""

from __future__ import annotations

from pathlib import Path

import pytest

from imagesearch import gitops
from imagesearch.repository import ModelRepository
from tests.gitops.support import V1, V2, V3, bootstrapped, clone, git_output, log, rendered_version

DECISION = gitops.Decision("V2 returns bad results", "ops@test")



def test_bump_commits_once_per_new_version(tmp_path: Path, config: gitops.GitOpsConfig, models: ModelRepository) -> None:
    before = rendered_version(config, tmp_path / "before")
    first = gitops.bump(config, V1, models, items=20, metrics={"recall_at_10": 1.0, "near_duplicate_top1": 0.96789})
    assert (first.version, first.previous, first.attempts, first.changed) == (V1, "", 1, True)
    repeat = gitops.bump(config, V1, models, items=20)
    assert (repeat.changed, repeat.commit, repeat.previous) == (False, None, V1)
    second = gitops.bump(config, V2, models)
    assert (second.previous, second.changed) == (V1, True)

    subjects = log(config, tmp_path / "clone")
    assert subjects[:2] == [f"Deploy index {V2} to local", f"Deploy index {V1} to local"]
    assert len(subjects) == 3
    message = git_output(tmp_path / "clone", "log", "-1", "--format=%B%an <%ae>", first.commit or "")
    assert "Items: 20" in message and "near_duplicate_top1=0.9679" in message and "recall_at_10=1" in message
    assert f"Index-Version: {V1}" in message and "Test Bot <bot@test>" in message
    version, config_map = rendered_version(config, tmp_path / "after")
    assert version == V2
    assert config_map != before[1]  # the hashed name changed: Argo CD rolls the pods


def test_a_version_missing_from_the_model_repository_is_refused(tmp_path: Path, config: gitops.GitOpsConfig,
                                                                models: ModelRepository) -> None:
    with pytest.raises(gitops.GitOpsError, match="20260109T000000Z is not committed"):
        gitops.bump(config, "20260109T000000Z", models)
    (Path(models.uri) / "indexes" / V3 / "_COMMIT").unlink()  # present but incomplete: still refused
    with pytest.raises(gitops.GitOpsError, match="not committed"):
        gitops.bump(config, V3, models)
    assert len(log(config, tmp_path / "clone")) == 1


def test_history_and_rollback_by_revert(tmp_path: Path, config: gitops.GitOpsConfig, models: ModelRepository) -> None:
    first = gitops.bump(config, V1, models)
    second = gitops.bump(config, V2, models)
    tip_before = second.commit or ""

    result = gitops.rollback(config, repository=models, decision=DECISION)
    assert (result.version, result.previous, result.reverted) == (V1, V2, (second.commit,))
    assert rendered_version(config, tmp_path / "clone")[0] == V1
    checkout = clone(config, tmp_path / "clone")
    # A new commit on top: every earlier commit is still there (no rewrite, no force push).
    assert git_output(checkout.path, "merge-base", "--is-ancestor", tip_before, "HEAD") == ""
    assert git_output(checkout.path, "rev-list", "--count", "HEAD") == "4"
    releases = gitops.history(gitops.Overlay(checkout))
    assert [(r.version, r.previous) for r in releases] == [(V1, V2), (V2, V1), (V1, ""), ("", "")]
    assert [r.commit for r in releases[1:3]] == [second.commit, first.commit]

    assert not gitops.rollback(config, to=V1, repository=models, decision=DECISION).changed  # already there
    with pytest.raises(gitops.GitOpsError, match="never deployed"):
        gitops.rollback(config, to=V3, repository=models, decision=DECISION)
    # "Roll back" to a later one: reverts the revert.
    forward = gitops.rollback(config, to=V2, repository=models, decision=DECISION)
    assert forward.reverted == (result.commit,)
    assert rendered_version(config, tmp_path / "clone")[0] == V2


def test_rollback_refuses_a_version_gone_from_the_model_repository(tmp_path: Path, config: gitops.GitOpsConfig,
                                                                   models: ModelRepository) -> None:
    gitops.bump(config, V1, models)
    gitops.bump(config, V2, models)
    (Path(models.uri) / "indexes" / V1 / "_COMMIT").unlink()
    with pytest.raises(gitops.GitOpsError, match=f"{V1} is not committed"):
        gitops.rollback(config, repository=models, decision=DECISION)
    with pytest.raises(gitops.GitOpsError, match="nothing to roll back to"):
        gitops.rollback(bootstrapped(tmp_path / "fresh", models.uri), repository=models, decision=DECISION)


def test_a_pin_outlasts_later_bumps_and_wins_a_race(tmp_path: Path, config: gitops.GitOpsConfig,
                                                    models: ModelRepository) -> None:
    gitops.bump(config, V1, models)
    gitops.bump(config, V2, models)

    def rollback_lands_first(attempt: int) -> None:
        if attempt == 1:  # between our clone and our push, an operator rolls back to V1
            gitops.rollback(config, to=V1, repository=models, decision=DECISION, workdir=tmp_path / "operator")

    raced = gitops.bump(config, V3, models, before_push=rollback_lands_first)
    assert (raced.changed, raced.attempts, raced.previous) == (False, 1, V1)
    assert raced.skipped is not None and f"pinned to {V1} by ops@test" in raced.skipped
    assert "V2 returns bad results" in raced.skipped and "tasks.operations.rollback unpin" in raced.skipped
    assert rendered_version(config, tmp_path / "clone")[0] == V1
    assert log(config, tmp_path / "clone")[0] == f"Roll back local index to {V1} (from {V2})"

    later = gitops.bump(config, V3, models)  # the next hourly run: still pinned
    assert not later.changed and later.skipped and rendered_version(config, tmp_path / "clone")[0] == V1
    pin = gitops.Overlay(clone(config, tmp_path / "clone")).pin()
    assert pin is not None and (pin.version, pin.reason, pin.by) == (V1, "V2 returns bad results", "ops@test")


def test_a_reverted_version_is_never_bumped_to_again_unless_a_person_says_so(
    tmp_path: Path, config: gitops.GitOpsConfig, models: ModelRepository
) -> None:
    gitops.bump(config, V1, models)
    gitops.bump(config, V2, models)
    gitops.rollback(config, repository=models, decision=DECISION)
    lifted = gitops.unpin(config, gitops.Decision("fixed upstream", "ops@test"))
    assert lifted.changed and gitops.Overlay(clone(config, tmp_path / "clone")).pin() is None
    assert log(config, tmp_path / "clone")[0] == "Unpin local index"
    assert not gitops.unpin(config, gitops.Decision("again", "ops@test")).changed  # nothing pinned: no commit

    retried = gitops.bump(config, V2, models)  # e.g. the reverted run's deploy task, retried
    assert not retried.changed and retried.skipped and f"index {V2} was reverted by ops@test" in retried.skipped
    assert rendered_version(config, tmp_path / "clone")[0] == V1
    assert gitops.bump(config, V3, models).changed  # a new version deploys
    assert rendered_version(config, tmp_path / "clone")[0] == V3

    forced = gitops.unpin(config, gitops.Decision("V2 is fine after all", "ops@test"), deploy=V2, repository=models)
    assert forced.changed and rendered_version(config, tmp_path / "clone")[0] == V2
    actions = [(release.version, release.action, bool(release.pin)) for release in gitops.history(
        gitops.Overlay(clone(config, tmp_path / "clone")))]
    assert actions[:5] == [(V2, "deploy", False), (V3, "deploy", False), (V1, "unpin", True), (V1, "rollback", True),
                           (V2, "deploy", False)]
