"""Creating the local bare GitOps repo (one machine, no git host) from this project's ``gitops/`` folder."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from imagesearch import kustomize
from imagesearch.errors import GitOpsError
from imagesearch.gitops.client import Checkout, git
from imagesearch.gitops.config import SOURCE_DIR, GitOpsConfig, local_repo_path
from imagesearch.gitops.overlay import Overlay


def bootstrap(config: GitOpsConfig, source: Path = SOURCE_DIR, model_repository: str | None = None) -> bool:
    """Create the local bare GitOps repo from this project's ``gitops/`` folder; False if it exists already.

    ``model_repository`` (if given) is written into the configured overlay in the initial commit.
    """
    path = local_repo_path(config.url)
    if path is None:
        raise GitOpsError(f"{config.url} is a remote repository: create it with your git host, then push gitops/ to it")
    if (path / "HEAD").is_file():
        if git(path, "rev-parse", "--verify", "--quiet", f"refs/heads/{config.branch}", check=False).returncode == 0:
            return False
    elif path.exists() and any(path.iterdir()):
        raise GitOpsError(f"{path} exists and is not a bare git repository")
    else:
        git(None, "init", "--quiet", "--bare", f"--initial-branch={config.branch}", str(path))
    with tempfile.TemporaryDirectory(prefix="gitops-bootstrap-") as scratch:
        work = Checkout(config, Path(scratch))
        git(None, "init", "--quiet", f"--initial-branch={config.branch}", scratch)
        work.configure()
        shutil.copytree(source, work.path / "gitops")
        if model_repository:
            Overlay(work).set_literal(kustomize.REPOSITORY_KEY, model_repository)
        work.git("add", "--all")
        work.commit("Bootstrap the GitOps repo from the project's gitops/ folder")
        work.git("push", "--quiet", str(path.resolve()), f"HEAD:refs/heads/{config.branch}")
    return True
