"""Rollbacks that stick, on real ``airflow dags test`` runs and a real GitOps repo.

Rollback pins the overlay; the next (hourly-style) run still publishes its version but its deploy task
ends as skipped with the pin's reason in the log, and the overlay is unchanged. After the unpin, the
next run deploys. Each run's evaluate compares its candidate with the version the overlay serves.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from imagesearch import gitops
from imagesearch.artifacts import read_manifest
from imagesearch.repository import open_repository
from plugins.hooks.model_repository import ModelRepositoryHook
from tasks.operations import rollback
from tests.conftest import SECOND_VERSION
from tests.dags.airflow_support import dags_test, pipeline_env, run_conf, task_states
from tests.gitops.support import bootstrapped, log, rendered_version

pytestmark = pytest.mark.slow


@pytest.mark.timeout(2400)  # three pipeline runs (two as fixtures) and two DAG runs
def test_rollback_holds_through_a_run_and_unpin_lets_the_next_run_deploy(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path, photo_catalog: Path, two_versions: Path,
    published_repository: tuple[Path, str],
) -> None:
    home = tmp_path_factory.mktemp("airflow-home")
    models = tmp_path / "models"
    shutil.copytree(two_versions, models)
    first = published_repository[1]
    config = bootstrapped(tmp_path, str(models))
    repository = open_repository(str(models))
    gitops.bump(config, first, repository)
    gitops.bump(config, SECOND_VERSION, repository)
    assert rollback.main(["rollback", "--gitops-repo", config.url, "--repository", str(models),
                          "--reason", "second version misranks shoes", "--by", "oncall"]) == 0
    commits = len(log(config, tmp_path / "clone"))
    # A full rebuild: a run with a new version to publish (the served catalog unchanged would change nothing at all).
    conf = run_conf(photo_catalog, full_rebuild=True)

    pinned = dags_test(home, pipeline_env(tmp_path), conf)
    output = pinned.stdout + pinned.stderr
    assert pinned.returncode == 0, output[-6000:]
    states = task_states(home)
    assert states[("deploy", -1)][0] == "skipped" and states[("publish", -1)][0] == "success"
    assert f"step deploy skipped: gitops/overlays/local is pinned to {first} by oncall" in output
    assert "second version misranks shoes" in output
    hook = ModelRepositoryHook(str(models))
    published = hook.committed_versions()[-1]
    assert published not in (first, SECOND_VERSION)  # the run still published its version...
    assert rendered_version(config, tmp_path / "clone")[0] == first  # ...but the overlay is as the operator left it
    assert len(log(config, tmp_path / "clone")) == commits
    gate = read_manifest(repository, published).gate
    assert gate["passed"] and gate["serving"] == first  # compared with what the overlay serves
    assert set(gate["metrics"]["near_duplicate_top1"]) >= {"candidate", "serving", "delta", "tolerance", "floor"}

    assert rollback.main(["unpin", "--gitops-repo", config.url, "--reason", "fixed", "--json"]) == 0
    released = dags_test(home, pipeline_env(tmp_path), conf)
    assert released.returncode == 0, (released.stdout + released.stderr)[-6000:]
    assert task_states(home)[("deploy", -1)][0] == "success"
    newest = hook.committed_versions()[-1]
    assert newest != published
    assert rendered_version(config, tmp_path / "clone")[0] == newest
    actions = [(release.action, release.version) for release in gitops.history(gitops.Overlay.at(config, tmp_path / "clone"))]
    assert actions[:3] == [("deploy", newest), ("unpin", first), ("rollback", first)]
    assert json.loads((models / "runs" / newest / "evaluate" / "gate.json").read_text())["serving"] == first
