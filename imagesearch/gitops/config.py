"""Where the GitOps repo is and how the pipeline writes to it: URL, credential, branch, overlay, commit author,
push retries."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from imagesearch import kustomize
from imagesearch.settings import PROJECT_ROOT, Settings
from imagesearch.uri import redact_userinfo, split_userinfo

SOURCE_DIR = PROJECT_ROOT / "gitops"  # what a local GitOps repo is bootstrapped from
_SCP_LIKE = re.compile(r"^[\w.-]+@[\w.-]+:")


@dataclass(frozen=True)
class GitOpsConfig:
    """``url`` never holds a credential: a URL given with userinfo (``https://<token>@host/...``, the form the
    manifests once documented) has it moved into ``username`` / ``token``, which git gets from a credential
    helper (:func:`imagesearch.gitops.client.git`) and nothing prints. That userinfo wins over the settings'
    token."""

    url: str
    branch: str = "main"
    overlay: str = "gitops/overlays/local"
    author_name: str = "image-index-bot"
    author_email: str = "image-index-bot@localhost"
    push_retries: int = 5
    username: str = field(default="", repr=False)  # the git credential; both empty: git's own credential setup
    token: str = field(default="", repr=False)

    def __post_init__(self) -> None:
        url, username, password = split_userinfo(self.url)
        if username is not None:
            object.__setattr__(self, "url", url)
            object.__setattr__(self, "username", username)
            object.__setattr__(self, "token", password or "")

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> GitOpsConfig:
        token = settings.gitops.token.get_secret_value()
        values = {
            "url": settings.gitops.repo_url, "branch": settings.gitops.branch, "overlay": settings.gitops.overlay,
            "author_name": settings.gitops.author_name, "author_email": settings.gitops.author_email,
            "push_retries": settings.gitops.push_retries, "username": settings.gitops.username if token else "",
            "token": token,
        }
        return cls(**{**values, **{key: value for key, value in overrides.items() if value is not None}})

    @property
    def credential(self) -> tuple[str, str] | None:
        """(user name, password) for git's credential helper; None: leave git's own credential setup alone."""
        return (self.username, self.token) if self.username or self.token else None

    @property
    def secrets(self) -> tuple[str, ...]:
        """The values no message may contain: the token, and the user name when it is the token (``<token>@``)."""
        return tuple(value for value in (self.token or self.username,) if value)

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


def repo_option_help(settings: Settings) -> str:
    """``--gitops-repo``'s help: its default from settings, printed without credentials."""
    return f"GitOps repo URL (default {redact_userinfo(settings.gitops.repo_url)})"


def local_repo_path(url: str) -> Path | None:
    """The folder of a local GitOps repo URL (a path or file://), None for a remote one."""
    if url.startswith("file://"):
        return Path(url[len("file://") :])
    if "://" in url or _SCP_LIKE.match(url):
        return None
    return Path(url)
