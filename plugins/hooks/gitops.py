"""The GitOps repo as Airflow sees it: bump an overlay's index version, read its history, roll it back.

A thin wrapper over ``imagesearch.gitops`` — the same code ``python -m tasks.commit_version`` (the DAG's last
step, a pod) and ``python -m tasks.rollback`` run — for tasks that work in the worker instead.

Where the repo is: an Airflow connection (``gitops_conn_id``; host = the clone URL, extras ``branch``,
``overlay``, ``author_name``, ``author_email``, ``push_retries``), else the IMAGESEARCH_GITOPS_* settings.
Git credentials are git's own business (an SSH key or a credential helper in the worker's environment):
the hook never puts secrets in URLs or argv.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from airflow.sdk import BaseHook

from imagesearch import gitops
from imagesearch.repository import open_repository
from imagesearch.settings import get_settings

CONNECTION_EXTRAS = ("branch", "overlay", "author_name", "author_email", "push_retries")


class GitOpsHook(BaseHook):
    conn_name_attr = "gitops_conn_id"
    default_conn_name = "gitops_default"
    conn_type = "git"
    hook_name = "Image-search GitOps repo"

    def __init__(self, gitops_conn_id: str | None = None, overlay: str | None = None,
                 model_repository: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.gitops_conn_id = gitops_conn_id
        self.overlay = overlay
        self.settings = get_settings()
        self.model_repository = model_repository or self.settings.storage.model_repository

    def get_conn(self) -> gitops.GitOpsConfig:
        overrides: dict[str, Any] = {}
        if self.gitops_conn_id:
            connection = self.get_connection(self.gitops_conn_id)
            extras = connection.extra_dejson
            overrides = {"url": connection.host, **{key: extras[key] for key in CONNECTION_EXTRAS if key in extras}}
            if "push_retries" in overrides:
                overrides["push_retries"] = int(overrides["push_retries"])
        if self.overlay:
            overrides["overlay"] = self.overlay
        return gitops.GitOpsConfig.from_settings(self.settings, **overrides)

    def bump(self, version: str, items: int | None = None, metrics: dict[str, float] | None = None) -> dict[str, Any]:
        """Point the overlay at ``version`` (committed in the model repository): one commit, or none if it already does."""
        result = gitops.bump(self.get_conn(), version, open_repository(self.model_repository), items=items, metrics=metrics)
        self.log.info("GitOps bump of %s to %s: %s", result.overlay, version,
                      result.commit or result.skipped or "already there")
        return result.summary()

    def history(self) -> list[dict[str, Any]]:
        """The overlay's deployed versions, newest first."""
        with gitops.checkout(self.get_conn()) as target:
            target.sync()
            return [asdict(release) for release in gitops.history(target)]

    def rollback(self, reason: str, to: str | None = None, by: str = "airflow") -> dict[str, Any]:
        """``git revert`` back to the previous (or the named) version and pin it there; never a force push."""
        result = gitops.rollback(self.get_conn(), to, open_repository(self.model_repository),
                                 decision=gitops.Decision(reason, by))
        self.log.info("GitOps rollback of %s to %s: %s", result.overlay, result.version, result.commit or "already there")
        return result.summary()
