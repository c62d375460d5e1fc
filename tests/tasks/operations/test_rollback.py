"""``python -m tasks.operations.rollback``: init, history and a ``git revert`` rollback that says what Argo CD will do."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from imagesearch import gitops
from imagesearch.repository import ModelRepository
from tasks.operations import rollback
from tests.gitops.support import PASSED_GATE, V1, V2, V3, committed_versions, git_output, rendered_version


@pytest.fixture
def models(tmp_path: Path) -> ModelRepository:
    return committed_versions(tmp_path / "models", V1, V2, V3)


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = rollback.main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_init_history_rollback(tmp_path: Path, models: ModelRepository, capsys: pytest.CaptureFixture[str]) -> None:
    url = str(tmp_path / "gitops.git")
    repo = ("--gitops-repo", url)
    code, out, _ = cli(capsys, "init", *repo, "--model-repository", models.uri)
    assert code == 0 and "created from" in out
    code, out, _ = cli(capsys, "init", *repo)
    assert code == 0 and "already exists" in out
    code, out, _ = cli(capsys, "history", *repo)
    assert out.startswith("* (none)")

    config = gitops.GitOpsConfig(url=url)
    first, second = gitops.bump(config, V1, models), gitops.bump(config, V2, models)
    code, out, _ = cli(capsys, "history", *repo)
    lines = out.splitlines()
    assert len(lines) == 5 and lines[0].startswith(f"* {V2} ") and lines[1].startswith(f"  {V1} ")
    assert (first.commit or "")[:12] in lines[1] and "Deploy index" in lines[1]
    assert lines[-1] == "gitops/overlays/local is not pinned"

    with pytest.raises(SystemExit):  # argparse: a rollback must say why
        cli(capsys, "rollback", *repo, "--repository", models.uri)
    assert "required: --reason" in capsys.readouterr().err
    code, out, err = cli(capsys, "rollback", *repo, "--repository", models.uri, "--reason", "V2 misses items",
                         "--by", "alice")
    assert code == 0, err
    assert out.startswith(f"Rolled gitops/overlays/local back from {V2} to {V1}: commit ")
    assert f"reverts {(second.commit or '')[:12]} and pins {V1} (V2 misses items)" in out
    assert "Argo CD syncs imagesearch-local automatically" in out and "python -m localdev.argocd" in out
    assert rendered_version(config, tmp_path / "clone")[0] == V1
    assert git_output(tmp_path / "clone", "rev-list", "--count", "HEAD") == "4"  # bootstrap, 2 bumps, the revert
    # The pin and the reverted version are in the revert's own commit, beside the overlay's kustomization.
    changed = git_output(tmp_path / "clone", "show", "--name-only", "--format=", "HEAD").splitlines()
    assert sorted(changed) == [f"gitops/overlays/local/{name}" for name in ("kustomization.yaml", "pin.yaml",
                                                                           "reverted.yaml")]
    code, out, _ = cli(capsys, "history", *repo)
    assert f"pinned to {V1} by alice at " in out and ": V2 misses items" in out
    assert out.splitlines()[0].startswith(f"* {V1} ") and " rollback " in out.splitlines()[0]
    assert f"reverted: {V2} by alice at " in out and f"gitops/overlays/local is pinned to {V1}" in out

    code, out, _ = cli(capsys, "history", *repo, "--json")
    assert [(entry["version"], entry["previous"]) for entry in json.loads(out)] == [(V1, V2), (V2, V1), (V1, ""), ("", "")]
    code, _, err = cli(capsys, "rollback", *repo, "--to", V3, "--repository", models.uri, "--reason", "x")
    assert code == 1 and f"version {V3} was never deployed to this overlay (deployed: {V1}, {V2}" in err


def test_rollback_of_a_manually_synced_overlay(tmp_path: Path, models: ModelRepository,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    config = gitops.GitOpsConfig(url=str(tmp_path / "gitops.git"), overlay="gitops/overlays/production")
    assert gitops.bootstrap(config)
    gitops.bump(config, V1, models)
    gitops.bump(config, V3, models)
    code, out, err = cli(capsys, "rollback", "--gitops-repo", config.url, "--overlay", config.overlay, "--to", V1,
                         "--no-check", "--json", "--reason", "incident 42")
    assert code == 0, err
    result = json.loads(out)
    assert (result["version"], result["previous"], result["changed"]) == (V1, V3, True)
    assert "argocd app sync imagesearch-production" in result["argo_cd"]
    assert rendered_version(config, tmp_path / "clone")[0] == V1


def test_unpin_deploy_latest_takes_the_newest_gated_version_that_was_not_reverted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    v4 = "20260104T000000Z-5e6f7a8b"
    models = committed_versions(tmp_path / "models", V1, V2, v4, gate=PASSED_GATE)
    committed_versions(tmp_path / "models", V3)  # newer than V2 but without a passing gate report
    config = gitops.GitOpsConfig(url=str(tmp_path / "gitops.git"))
    assert gitops.bootstrap(config, model_repository=models.uri)
    repo = ("--gitops-repo", config.url, "--repository", models.uri)
    gitops.bump(config, V1, models)
    gitops.bump(config, v4, models)
    code, _, err = cli(capsys, "rollback", *repo, "--reason", "v4 is broken")
    assert code == 0, err

    code, out, err = cli(capsys, "release", *repo, "--deploy-latest", "--by", "bob")
    assert code == 0, err
    # v4 was reverted and V3 never passed a gate: V2 is the newest deployable version.
    assert "lifts the pin and deploys " + V2 in out
    assert rendered_version(config, tmp_path / "clone")[0] == V2
    body = git_output(tmp_path / "clone", "log", "-1", "--format=%B")
    assert body.startswith(f"Unpin local index and deploy {V2}\n\nWas pinned to {V1} by ") and "Unpinned-By: bob" in body
