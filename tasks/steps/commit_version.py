"""Commit the run's index version to the GitOps overlay (the DAG's last step, task ``deploy``).

    python -m tasks.steps.commit_version --workspace URI [--repository URI] [--overlay gitops/overlays/staging]

Clones the GitOps repo (IMAGESEARCH_GITOPS_REPO_URL, _BRANCH, _OVERLAY), sets the overlay's index
version and pushes one commit naming the version, its item count and evaluation metrics; none when the
overlay already names it (or a newer one). A version not committed in the model repository is refused.
A pinned overlay (``python -m tasks.operations.rollback rollback``) or a version that was reverted is left alone: the
step then exits 3 with the reason, which the DAG shows as a *skipped* deploy task. Argo CD (or
``python -m localdev.argocd`` on one machine) rolls the servers from there.
"""

from __future__ import annotations

from typing import Any

from imagesearch import gitops
from tasks import cli
from tasks.workspace import LAYOUT


def commit_version(context: cli.StepContext) -> dict[str, Any]:
    settings, workspace = context.settings, context.workspace
    version = context.run["version"]
    items = workspace.read_json(LAYOUT.BUILD.key)["items"]
    metrics = workspace.read_json(LAYOUT.METRICS.key)
    config = gitops.GitOpsConfig.from_settings(settings, overlay=context.args.overlay)
    repository = context.repository()
    result = gitops.bump(config, version, repository, items=items, metrics=metrics)
    summary = {**result.summary(), "gitops_repo": config.url, "branch": config.branch}
    if result.skipped:
        raise cli.StepSkipped(result.skipped, summary)
    return summary


main = cli.entry("commit_version", commit_version, __doc__)

if __name__ == "__main__":
    raise SystemExit(main())
