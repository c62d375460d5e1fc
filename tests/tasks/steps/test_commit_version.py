"""The DAG's last step (task ``deploy``): ``python -m tasks.steps.commit_version`` bumps the GitOps overlay to the run's
version."""

from __future__ import annotations

from pathlib import Path

import pytest

from imagesearch import gitops
from tasks.cli import EXIT_PERMANENT, EXIT_SKIPPED
from tasks.operations import rollback
from tasks.pipeline import STEP
from tasks.workspace import Workspace
from tests.conftest import SECOND_VERSION
from tests.gitops.support import bootstrapped, git_output, log, rendered_version
from tests.tasks.conftest import run_step


@pytest.fixture
def config(tmp_path: Path, published_repository: tuple[Path, str], monkeypatch: pytest.MonkeyPatch) -> gitops.GitOpsConfig:
    config = bootstrapped(tmp_path, str(published_repository[0]))
    for name, value in (("REPO_URL", config.url), ("AUTHOR_NAME", "Pipeline"), ("AUTHOR_EMAIL", "pipeline@test")):
        monkeypatch.setenv(f"IMAGESEARCH_GITOPS_{name}", value)
    return config


def test_commit_version_step_commits_the_run_version_once(tmp_path: Path, published_repository: tuple[Path, str],
                                                  config: gitops.GitOpsConfig) -> None:
    models, version = published_repository
    workspace = models / "runs" / version
    assert STEP["deploy"].command == ["python", "-m", "tasks.steps.commit_version"]

    first = run_step("commit_version", workspace, "--repository", str(models))
    assert first.code == 0, first.stderr
    assert (first.summary["step"], first.summary["version"], first.summary["changed"]) == ("commit_version", version, True)
    assert rendered_version(config, tmp_path / "clone")[0] == version
    message = git_output(tmp_path / "clone", "log", "-1", "--format=%B%an")
    assert message.startswith(f"Deploy index {version} to local\n\nItems: 20\nMetrics: ")
    assert "recall_at_10=1" in message and message.endswith("Pipeline")

    again = run_step("commit_version", workspace, "--repository", str(models))
    assert again.code == 0 and again.summary["changed"] is False and again.summary["commit"] is None
    assert len(log(config, tmp_path / "clone")) == 2


def test_commit_version_step_refuses_a_version_the_model_repository_lacks(tmp_path: Path, published_repository: tuple[Path, str],
                                                                  config: gitops.GitOpsConfig) -> None:
    models, version = published_repository
    source, target = Workspace(str(models / "runs" / version)), Workspace(str(tmp_path / "run"))
    for key in ("build/index.json", "evaluate/metrics.json"):
        target.write_json(key, source.read_json(key))
    target.write_json("snapshot/run.json", {**source.run_info(), "version": "20260109T000000Z"})

    result = run_step("commit_version", tmp_path / "run", "--repository", str(models))
    assert result.code == EXIT_PERMANENT  # publishing it is another run's job: trying again cannot help
    assert "commit_version failed: index version 20260109T000000Z is not committed in the model repository" in result.stderr
    assert len(log(config, tmp_path / "clone")) == 1


def test_a_commit_to_a_pinned_overlay_is_skipped_and_a_reverted_run_never_deploys_again(
    tmp_path: Path, two_versions: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = bootstrapped(tmp_path, str(two_versions))
    monkeypatch.setenv("IMAGESEARCH_GITOPS_REPO_URL", config.url)
    first, second = sorted(path.name for path in (two_versions / "runs").iterdir())
    assert second == SECOND_VERSION
    for version in (first, second):
        assert run_step("commit_version", two_versions / "runs" / version, "--repository", str(two_versions)).code == 0
    assert rollback.main(["rollback", "--repository", str(two_versions), "--reason", "second misranks shoes"]) == 0
    commits = len(log(config, tmp_path / "clone"))

    retried = run_step("commit_version", two_versions / "runs" / second, "--repository", str(two_versions))
    assert retried.code == EXIT_SKIPPED
    assert f"commit_version skipped: gitops/overlays/local is pinned to {first} by " in retried.stderr
    assert "second misranks shoes" in retried.stderr
    assert rendered_version(config, tmp_path / "clone")[0] == first and len(log(config, tmp_path / "clone")) == commits

    assert rollback.main(["unpin", "--reason", "looked into it"]) == 0
    again = run_step("commit_version", two_versions / "runs" / second, "--repository", str(two_versions))
    assert again.code == EXIT_SKIPPED and f"index {second} was reverted by " in again.stderr
    assert rendered_version(config, tmp_path / "clone")[0] == first
    assert len(log(config, tmp_path / "clone")) == commits + 1  # only the unpin
