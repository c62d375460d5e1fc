"""``python -m tasks.operations.promote --from staging --to production`` on a real git repo, rendered by real kustomize."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from imagesearch import gitops
from tasks.operations import promote
from tests.gitops.support import PASSED_GATE, V1, V2, V3, bootstrapped, committed_versions, git_output, log, rendered_version

V4 = "20260104T000000Z-0a1b2c3d"


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = promote.main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_promote_commits_what_staging_serves_once_after_its_checks(tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    models = committed_versions(tmp_path / "models", V1, V2, V4, gate=PASSED_GATE)
    committed_versions(tmp_path / "models", V3)  # committed, but without a passing gate report
    config = bootstrapped(tmp_path, models.uri, overlay="gitops/overlays/staging")
    production = dataclasses.replace(config, overlay="gitops/overlays/production")
    args = ("--from", "staging", "--to", "production", "--gitops-repo", config.url, "--repository", models.uri)

    code, _, err = cli(capsys, *args)
    assert code == 1 and "promote refused: gitops/overlays/staging names no index version" in err

    gitops.bump(config, V1, models)
    code, out, err = cli(capsys, *args, "--json")
    assert code == 0, err
    result = json.loads(out)
    assert (result["version"], result["previous"], result["changed"]) == (V1, "", True)
    assert "argocd app sync imagesearch-production" in result["argo_cd"]  # production keeps manual sync
    assert rendered_version(production, tmp_path / "clone")[0] == V1
    message = git_output(tmp_path / "clone", "log", "-1", "--format=%B")
    assert message.startswith(f"Promote index {V1} from staging to production\n\nItems: 1\nMetrics: recall_at_10=0.99")
    assert "Rollout-Action: promote" in message
    assert git_output(tmp_path / "clone", "show", "--name-only", "--format=", "HEAD") == \
        "gitops/overlays/production/kustomization.yaml"  # one commit, to production's overlay only
    commits = len(log(config, tmp_path / "clone"))
    code, out, _ = cli(capsys, *args)
    assert code == 0 and "already names index" in out and len(log(config, tmp_path / "clone")) == commits

    gitops.bump(config, V3, models)  # staging serves a version whose gate report is missing
    code, _, err = cli(capsys, *args)
    assert code == 1 and f"index {V3} has no passing quality-gate report" in err

    gitops.bump(config, V4, models)
    (Path(models.uri) / "indexes" / V4 / "_COMMIT").unlink()  # staging names it, but it is not committed (any more)
    code, _, err = cli(capsys, *args)
    assert code == 1 and f"index {V4} (served by staging) is not committed in {models.uri}" in err
    assert rendered_version(production, tmp_path / "clone")[0] == V1

    gitops.rollback(production, to=V1, repository=models, decision=gitops.Decision("hold production", "oncall"))
    gitops.unpin(config, gitops.Decision("staging moves on", "oncall"), deploy=V2, repository=models)
    code, _, err = cli(capsys, *args)
    assert code == 1 and f"not promoting {V2}: gitops/overlays/production is pinned to {V1} by oncall" in err
    assert rendered_version(production, tmp_path / "clone")[0] == V1

    gitops.unpin(production, gitops.Decision("released", "oncall"))
    code, out, err = cli(capsys, *args)
    assert code == 0 and f"Promoted index {V2} from staging to production (was {V1})" in out, err
    assert rendered_version(production, tmp_path / "clone")[0] == V2
    assert [release.action for release in gitops.history(gitops.Overlay.at(production, tmp_path / "clone"))][:3] == \
        ["promote", "unpin", "rollback"]
