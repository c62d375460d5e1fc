"""GitOpsHook: the Airflow face of the same bump / history / rollback, configured by a connection."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from imagesearch import gitops
from plugins.hooks.gitops import GitOpsHook
from tests.gitops.support import V1, V2, committed_versions, rendered_version


def test_hook_bumps_lists_and_rolls_back_through_a_connection(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    models = committed_versions(tmp_path / "models", V1, V2)
    config = gitops.GitOpsConfig(url=str(tmp_path / "gitops.git"), branch="deploy", overlay="gitops/overlays/staging")
    assert gitops.bootstrap(config)
    extra = {"branch": "deploy", "overlay": config.overlay, "author_name": "Airflow", "push_retries": "3"}
    monkeypatch.setenv("AIRFLOW_CONN_GITOPS_TEST", json.dumps({"conn_type": "git", "host": config.url, "extra": extra}))
    hook = GitOpsHook(gitops_conn_id="gitops_test", model_repository=models.uri)
    assert hook.get_conn() == gitops.GitOpsConfig(url=config.url, branch="deploy", overlay=config.overlay,
                                                  author_name="Airflow", push_retries=3)

    assert hook.bump(V1, items=3, metrics={"recall_at_10": 1.0})["changed"]
    assert hook.bump(V2)["previous"] == V1
    assert not hook.bump(V2)["changed"]
    assert [entry["version"] for entry in hook.history()] == [V2, V1, ""]
    assert hook.rollback("bad results")["version"] == V1
    assert rendered_version(config, tmp_path / "clone")[0] == V1
