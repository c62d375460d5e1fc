"""The GitOps repo: the version-bump commit, deploy history, ``git revert`` rollback, local bootstrap.

Everything goes through the real ``git`` CLI. One overlay's ``kustomization.yaml`` holds the index
version (a ``configMapGenerator`` literal); changing it is the whole deployment. Beside it, ``pin.yaml`` and
``reverted.yaml`` (see ``imagesearch.pins``) hold an operator's decisions: a pinned overlay is left alone by
every bump, and a reverted version is never deployed again automatically. Pushes are plain fast-forward
pushes: when one is rejected (someone pushed first) the change is made again on the new tip, where it is
checked again (a pin that landed meanwhile wins), and pushed again a bounded number of times. Nothing is
ever force-pushed, so history keeps every deploy, rollback, pin and promotion. Argo CD turns what lands on the
branch into pods (``python -m localdev.argocd`` does it on one machine).

One job per module: ``config`` (where the repo is), ``client`` (the git CLI and a clone), ``overlay`` (the
literals and decisions in one overlay), ``push`` (the push-and-retry protocol), ``history`` (releases from
``git log -p``), ``commit_messages``, ``policy`` (bump, rollback, unpin) and ``bootstrap``.
"""

from imagesearch.errors import GitOpsError
from imagesearch.gitops.bootstrap import bootstrap
from imagesearch.gitops.client import Checkout, checkout, git
from imagesearch.gitops.commit_messages import bump_message
from imagesearch.gitops.config import SOURCE_DIR, GitOpsConfig, local_repo_path, repo_option_help
from imagesearch.gitops.history import Release, history, version_changes
from imagesearch.gitops.overlay import Overlay, served_version
from imagesearch.gitops.policy import Decision, Result, bump, forbidden, rollback, unpin
from imagesearch.gitops.push import Edit, commit_and_push

__all__ = [
    "SOURCE_DIR", "Checkout", "Decision", "Edit", "GitOpsConfig", "GitOpsError", "Overlay", "Release",
    "Result", "bootstrap", "bump", "bump_message", "checkout", "commit_and_push", "forbidden", "git",
    "history", "local_repo_path", "repo_option_help", "rollback", "served_version", "unpin", "version_changes",
]
