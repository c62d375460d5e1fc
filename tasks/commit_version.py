"""Commit the run's index version to the GitOps overlay (the DAG's last step, task ``deploy``).

    python -m tasks.commit_version --workspace URI [--repository URI] [--overlay gitops/overlays/staging]

Clones the GitOps repo (IMAGESEARCH_GITOPS_REPO_URL, _BRANCH, _OVERLAY), sets the overlay's index
version and pushes one commit naming the version, its item count and evaluation metrics; none when the
overlay already names it (or a newer one). A version not committed in the model repository is refused.
A pinned overlay (``python -m tasks.rollback rollback``) or a version that was reverted is left alone: the
step then exits 3 with the reason, which the DAG shows as a *skipped* deploy task. Argo CD (or
``python -m localdev.argocd`` on one machine) rolls the servers from there.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from imagesearch import gitops
from imagesearch.repository import open_model_repository
from imagesearch.settings import Settings
from tasks import cli, unchanged
from tasks.workspace import LAYOUT, Workspace


def commit_version(args: argparse.Namespace, settings: Settings) -> dict[str, Any]:
    workspace = Workspace(args.workspace, settings.storage.repository_retry_s)
    info = workspace.run_info()
    if (skipped := unchanged.summary(info, "commit_version")) is not None:
        return {**skipped, "changed": False}  # no commit: no rollout
    version = info["version"]
    items = workspace.read_json(LAYOUT.BUILD.key)["items"]
    metrics = workspace.read_json(LAYOUT.METRICS.key)
    config = gitops.GitOpsConfig.from_settings(settings, overlay=args.overlay)
    repository = open_model_repository(settings, args.repository)
    result = gitops.bump(config, version, repository, items=items, metrics=metrics)
    summary = {**result.summary(), "gitops_repo": config.url, "branch": config.branch}
    if result.skipped:
        raise cli.StepSkipped(result.skipped, summary)
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = cli.parser("commit_version", __doc__ or "")
    parser.add_argument("--repository", help="model repository URI; default from settings")
    parser.add_argument("--overlay", help="overlay path in the GitOps repo; default from settings (IMAGESEARCH_GITOPS_OVERLAY)")
    return cli.run("commit_version", commit_version, parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
