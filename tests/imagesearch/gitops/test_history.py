"""Deploy history parsed from the real ``git log -p`` of an overlay: versions, actions, pins, bootstrap."""

from __future__ import annotations

from pathlib import Path

from imagesearch import gitops
from imagesearch.gitops.history import history, version_changes
from imagesearch.gitops.overlay import Overlay
from imagesearch.repository import ModelRepository
from tests.gitops.support import V1, V2, V3, clone


def test_history_lists_each_release_newest_first(tmp_path: Path, config: gitops.GitOpsConfig,
                                                models: ModelRepository) -> None:
    deployed = gitops.bump(config, V1, models).commit
    gitops.bump(config, V2, models)
    gitops.rollback(config, repository=models, decision=gitops.Decision("bad results", "ops@test"))
    gitops.unpin(config, gitops.Decision("fixed", "ops@test"))
    gitops.bump(config, V3, models)
    releases = history(Overlay(clone(config, tmp_path / "clone")))
    assert [(r.version, r.previous, r.action) for r in releases] == [
        (V3, V1, "deploy"), (V1, V1, "unpin"), (V1, V2, "rollback"), (V2, V1, "deploy"), (V1, "", "deploy"),
        ("", "", "bootstrap")]
    assert releases[2].pin.startswith(f"pinned to {V1} by ops@test") and releases[1].pin == "unpinned"
    assert releases[4].commit == deployed and releases[4].author == "Test Bot"
    assert releases[4].subject == f"Deploy index {V1} to local"
    assert [r.action for r in version_changes(releases)] == ["deploy", "rollback", "deploy", "deploy", "bootstrap"]


def test_other_overlays_do_not_show(tmp_path: Path, config: gitops.GitOpsConfig, models: ModelRepository) -> None:
    staging = gitops.GitOpsConfig(config.url, overlay="gitops/overlays/staging", author_name="Test Bot",
                                  author_email="bot@test")
    gitops.bump(staging, V1, models)
    assert [r.action for r in history(Overlay(clone(config, tmp_path / "clone")))] == ["bootstrap"]


def test_pin_reasons_and_names_in_history_are_escaped(tmp_path: Path, config: gitops.GitOpsConfig,
                                                      models: ModelRepository) -> None:
    gitops.bump(config, V1, models)
    gitops.bump(config, V2, models)
    decision = gitops.Decision("bad\nPinned-By: someone else\x1b[31m", "ops\x1b]0;title\x07@test")
    gitops.rollback(config, repository=models, decision=decision)
    releases = history(Overlay(clone(config, tmp_path / "clone")))
    assert all(text.isprintable() for release in releases for text in (release.pin, release.author, release.subject))
    assert releases[0].pin == f"pinned to {V1} by ops\\x1b]0;title\\x07@test at {releases[0].pin.split(' at ')[1]}"
    assert releases[0].pin.endswith(": bad\\nPinned-By: someone else\\x1b[31m")
