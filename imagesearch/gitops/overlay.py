"""One overlay of a checkout: the index version and repository literals in its kustomization.yaml, and the
operator's decisions beside it (``pin.yaml``, ``reverted.yaml``: see :mod:`imagesearch.pins`)."""

from __future__ import annotations

from pathlib import Path

from imagesearch import kustomize, pins
from imagesearch.errors import GitOpsError
from imagesearch.gitops.client import Checkout, checkout
from imagesearch.gitops.config import GitOpsConfig


class Overlay:
    def __init__(self, checkout: Checkout) -> None:
        self.checkout = checkout
        self.config = checkout.config

    @classmethod
    def at(cls, config: GitOpsConfig, path: Path) -> Overlay:
        """The overlay of the clone at ``path`` (made or synced by the caller)."""
        return cls(Checkout(config, path))

    @property
    def path(self) -> Path:
        return self.checkout.path / self.config.overlay

    @property
    def kustomization(self) -> Path:
        return self.checkout.path / self.config.kustomization

    def read_literal(self, key: str, rev: str | None = None) -> str:
        """A literal of the kustomization in the worktree, or at commit ``rev``."""
        if rev is None:
            if not self.kustomization.is_file():
                raise GitOpsError(f"the GitOps repo has no {self.config.kustomization}")
            text = self.kustomization.read_text()
        else:
            text = self.checkout.show(rev, self.config.kustomization)
        return kustomize.read_literal(text, key)

    def version(self, rev: str | None = None) -> str:
        return self.read_literal(kustomize.VERSION_KEY, rev)

    def set_literal(self, key: str, value: str) -> None:
        """Change a literal and stage the kustomization."""
        self.kustomization.write_text(kustomize.set_literal(self.kustomization.read_text(), key, value))
        self.checkout.git("add", "--", self.config.kustomization)

    def set_version(self, version: str) -> None:
        self.set_literal(kustomize.VERSION_KEY, version)

    def pin(self) -> pins.Pin | None:
        return pins.read_pin(self.path)

    def reverted(self) -> dict[str, pins.Reverted]:
        return pins.read_reverted(self.path)


def served_version(config: GitOpsConfig) -> str:
    """The index version the overlay names at the branch tip ("" when none yet), from a fresh clone."""
    with checkout(config) as target:
        target.sync()
        return Overlay(target).version()
