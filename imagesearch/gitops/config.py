"""Where the GitOps repo is and how the pipeline writes to it: URL, branch, overlay, commit author, push retries."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from imagesearch import kustomize
from imagesearch.settings import PROJECT_ROOT, Settings

SOURCE_DIR = PROJECT_ROOT / "gitops"  # what a local GitOps repo is bootstrapped from
_SCP_LIKE = re.compile(r"^[\w.-]+@[\w.-]+:")


@dataclass(frozen=True)
class GitOpsConfig:
    url: str
    branch: str = "main"
    overlay: str = "gitops/overlays/local"
    author_name: str = "image-index-bot"
    author_email: str = "image-index-bot@localhost"
    push_retries: int = 5

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> GitOpsConfig:
        values = {
            "url": settings.gitops.repo_url, "branch": settings.gitops.branch, "overlay": settings.gitops.overlay,
            "author_name": settings.gitops.author_name, "author_email": settings.gitops.author_email,
            "push_retries": settings.gitops.push_retries,
        }
        return cls(**{**values, **{key: value for key, value in overrides.items() if value is not None}})

    @property
    def kustomization(self) -> str:
        """The overlay's kustomization.yaml, relative to the repo root."""
        return f"{self.overlay.strip('/')}/{kustomize.KUSTOMIZATION}"

    def overlay_file(self, name: str) -> str:
        """A file in the overlay's folder, relative to the repo root."""
        return f"{self.overlay.strip('/')}/{name}"

    @property
    def environment(self) -> str:
        return PurePosixPath(self.overlay).name


def local_repo_path(url: str) -> Path | None:
    """The folder of a local GitOps repo URL (a path or file://), None for a remote one."""
    if url.startswith("file://"):
        return Path(url[len("file://") :])
    if "://" in url or _SCP_LIKE.match(url):
        return None
    return Path(url)
