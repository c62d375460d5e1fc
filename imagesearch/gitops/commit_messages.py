"""The words the GitOps commits and refusals carry: bump subjects and bodies, trailers, pin and revert notices.

The trailers are machine-read: :mod:`imagesearch.gitops.history` takes each release's action from them.
"""

from __future__ import annotations

from collections.abc import Mapping

from imagesearch import pins
from imagesearch.gitops.config import GitOpsConfig
from imagesearch.gitops.history import ACTION_TRAILER
from imagesearch.text import escape_control


def trailers(config: GitOpsConfig, version: str, previous: str, action: str = "deploy") -> str:
    return (f"Index-Version: {version}\nPrevious-Version: {previous or 'none'}\nOverlay: {config.overlay}\n"
            f"{ACTION_TRAILER}: {action}")


def bump_message(config: GitOpsConfig, version: str, previous: str, items: int | None,
                 metrics: Mapping[str, float] | None, *, title: str | None = None, action: str = "deploy") -> str:
    body = []
    if items is not None:
        body.append(f"Items: {items}")
    if metrics:
        body.append("Metrics: " + ", ".join(f"{name}={value:.4g}" for name, value in sorted(metrics.items())))
    paragraphs = [escape_control(title) if title else f"Deploy index {version} to {config.environment}", "\n".join(body),
                  trailers(config, version, previous, action)]
    return "\n\n".join(part for part in paragraphs if part)


def pinned_message(config: GitOpsConfig, pin: pins.Pin) -> str:
    return (f"{config.overlay} is {pin.describe()}; the overlay is left as it is "
            "(lift the pin with `python -m tasks.operations.rollback unpin`)")


def reverted_message(version: str, reverted: pins.Reverted) -> str:
    return (f"index {version} was reverted by {escape_control(reverted.by)} at {escape_control(reverted.at)} "
            f"({escape_control(reverted.reason)}); a reverted version "
            "is never deployed again automatically (a person can: "
            f"`python -m tasks.operations.rollback unpin --deploy {version}`)")
