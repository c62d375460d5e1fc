"""The git CLI wrapper on real repos: clone and sync to the tip, a refused push is told apart from a failed one."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from imagesearch.errors import GitOpsError
from imagesearch.gitops.client import Checkout, checkout, git
from imagesearch.gitops.config import GitOpsConfig
from tests.gitops.support import clone


def test_sync_clones_then_follows_the_branch_tip(tmp_path: Path, config: GitOpsConfig) -> None:
    mine, theirs = clone(config, tmp_path / "mine"), clone(config, tmp_path / "theirs")
    (theirs.path / "NOTE").write_text("hello\n")
    theirs.stage(theirs.path / "NOTE")
    pushed = theirs.commit("Add a note")
    assert theirs.push()
    (mine.path / "stray").write_text("left over\n")  # an untracked file from an earlier run is cleaned away
    assert mine.sync() == pushed == mine.head()
    assert (mine.path / "NOTE").read_text() == "hello\n" and not (mine.path / "stray").exists()
    assert mine.git("log", "-1", "--format=%an <%ae>") == "Test Bot <bot@test>"


def test_a_push_behind_the_remote_is_refused_not_failed(tmp_path: Path, config: GitOpsConfig) -> None:
    first, second = clone(config, tmp_path / "first"), clone(config, tmp_path / "second")
    for target, name in ((first, "a"), (second, "b")):
        (target.path / name).write_text(name)
        target.stage(target.path / name)
        target.commit(f"Add {name}")
    assert first.push()
    assert second.push() is False  # not a fast-forward: the caller remakes its change on the new tip
    broken = Checkout(dataclasses.replace(config, url=str(tmp_path / "gone.git")), second.path)
    broken.git("remote", "set-url", "origin", str(tmp_path / "gone.git"))
    with pytest.raises(GitOpsError, match=r"git push to .*gone\.git failed"):
        broken.push()


def test_clone_failure_says_how_to_make_the_repo(tmp_path: Path) -> None:
    with checkout(GitOpsConfig(url=str(tmp_path / "missing.git"))) as target, \
            pytest.raises(GitOpsError, match=r"tasks\.rollback init"):
        target.sync()
    with pytest.raises(GitOpsError, match="git rev-parse HEAD failed: fatal: not a git repository"):
        git(tmp_path, "rev-parse", "HEAD")
