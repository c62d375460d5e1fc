"""What the GitOps overlay serves: the index version it names, and that version's verified folder.

``snapshot`` asks to find out whether anything changed (an unreadable GitOps repo: build a new version);
``evaluate`` asks to compare the candidate with it (no local GitOps repo yet: nothing serves, floors only; any
other failure to read it fails the step, which may be retried).
"""

from __future__ import annotations

import logging
from pathlib import Path

from imagesearch import gitops
from imagesearch.artifacts import fetch, is_committed, verify_directory, version_key
from imagesearch.manifest import MANIFEST, Manifest
from imagesearch.repository import ModelRepository
from imagesearch.settings import Settings
from tasks.cli import StepFailed

log = logging.getLogger("served_version")


def overlay_version(settings: Settings, overlay: str | None = None) -> str | None:
    """The index version ``overlay`` (default: settings') names at the branch tip; None when it names none.
    :class:`gitops.GitOpsError` when the GitOps repo cannot be read."""
    return gitops.served_version(gitops.GitOpsConfig.from_settings(settings, overlay=overlay)) or None


def version_to_keep(settings: Settings) -> str | None:
    """The version the settings' overlay serves, or None (logged) when the GitOps repo cannot be read."""
    try:
        return overlay_version(settings)
    except gitops.GitOpsError as exc:
        log.warning("cannot read the version %s serves (%s): building a new version", settings.gitops.overlay, exc)
        return None


def version_to_compare(settings: Settings, overlay: str) -> str | None:
    """The version ``overlay`` serves now (None: no overlay given, no local GitOps repo yet, or none named)."""
    if not overlay:
        return None
    config = gitops.GitOpsConfig.from_settings(settings, overlay=overlay)
    local = gitops.local_repo_path(config.url)
    if local is not None and not (local / "HEAD").is_file():
        log.warning("no GitOps repo at %s yet: nothing serves, only the floors apply", config.url)
        return None
    return overlay_version(settings, overlay)


def served_folder(repository: ModelRepository, overlay: str, version: str, scratch: Path) -> tuple[Path, Manifest]:
    """The committed version ``overlay`` serves, its folder verified once (every checksum, nothing unlisted): read in
    place in a local repository, else downloaded into ``scratch``."""
    if not is_committed(repository, version):
        raise StepFailed(f"the overlay {overlay} serves {version}, which is not committed in {repository.uri}: the "
                         "gate cannot compare with it (wrong --repository?)")
    in_place = repository.local_file(version_key(version, MANIFEST))
    if in_place is not None:
        return in_place.parent, verify_directory(in_place.parent, version=version)
    return scratch, fetch(repository, version, scratch)
