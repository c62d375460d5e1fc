"""What may change the overlay's index version, and how: bump (newer versions only, never past a pin or a revert),
rollback (``git revert`` plus a pin, in one commit) and unpin."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from imagesearch import pins
from imagesearch.artifacts import is_committed
from imagesearch.errors import GitOpsError, VersionNotCommittedError
from imagesearch.gitops.client import checkout
from imagesearch.gitops.commit_messages import bump_message, pinned_message, reverted_message, trailers
from imagesearch.gitops.config import GitOpsConfig
from imagesearch.gitops.history import Release, history, version_changes
from imagesearch.gitops.overlay import Overlay
from imagesearch.gitops.push import BeforePush, Edit, commit_and_push
from imagesearch.manifest import check_version
from imagesearch.repository import ModelRepository
from imagesearch.text import escape_control

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Result:
    """What a bump or rollback did: ``commit`` is None when the overlay already named ``version``."""

    overlay: str
    version: str
    previous: str
    commit: str | None
    attempts: int
    reverted: tuple[str, ...] = ()
    skipped: str | None = None  # set when a pin or a revert forbade the change

    @property
    def changed(self) -> bool:
        return self.commit is not None

    def summary(self) -> dict[str, Any]:
        return {**asdict(self), "reverted": list(self.reverted), "changed": self.changed}

    @classmethod
    def of(cls, config: GitOpsConfig, version: str, pushed: tuple[Edit, str | None, int]) -> Result:
        edit, commit, attempts = pushed
        return cls(config.overlay, version, edit.previous, commit, attempts, edit.reverted, edit.skipped)


def forbidden(target: Overlay, version: str, force: bool = False) -> str | None:
    """Why an automatic change of the overlay to ``version`` must not happen: a pin, or ``version`` was reverted."""
    pin = target.pin()
    if pin is not None:
        return pinned_message(target.config, pin)
    reverted = target.reverted().get(version)
    if reverted is not None and not force:
        return reverted_message(version, reverted)
    return None


def _require_committed(repository: ModelRepository | None, version: str) -> None:
    if repository is not None and not is_committed(repository, version):
        raise VersionNotCommittedError(f"index version {version} is not committed in the model repository "
                                       f"{repository.uri}: refusing to deploy it")


def bump(config: GitOpsConfig, version: str, repository: ModelRepository, *, items: int | None = None,
         metrics: Mapping[str, float] | None = None, workdir: Path | None = None,
         before_push: BeforePush | None = None) -> Result:
    """Set the overlay's index version and push one commit naming it (none if it is already there).

    A pinned overlay, or a ``version`` that was reverted, is left alone: the result's ``skipped`` says why.
    """
    check_version(version)
    _require_committed(repository, version)

    def change(target: Overlay) -> Edit:
        previous = target.version()
        if reason := forbidden(target, version):
            return Edit(previous, skipped=reason)
        # Versions sort by build time: a run that lost a race to a newer version must not roll it back.
        if previous >= version:
            return Edit(previous)
        target.set_version(version)
        return Edit(previous, bump_message(config, version, previous, items, metrics))

    with checkout(config, workdir) as target:
        result = Result.of(config, version, commit_and_push(target, change, before_push))
    if result.skipped:
        log.warning("not deploying %s: %s", version, result.skipped)
    elif result.previous > version:
        log.warning("not deploying %s: the overlay already names the newer version %s", version, result.previous)
    return result


def _previous_version(releases: list[Release]) -> str:
    releases = version_changes(releases)
    if not releases or not releases[0].previous:
        raise GitOpsError("nothing to roll back to: the overlay has no earlier deployed version")
    return releases[0].previous


def _to_revert(releases: list[Release], target: str) -> list[Release]:
    """The releases after the newest one that set ``target``, newest first."""
    releases = version_changes(releases)
    for position, release in enumerate(releases):
        if release.version == target:
            return releases[:position]
    deployed = ", ".join(dict.fromkeys(release.version for release in releases if release.version)) or "none"
    raise GitOpsError(f"version {target} was never deployed to this overlay (deployed: {deployed})")


def _revert_kustomization(target: Overlay, reverts: list[Release]) -> None:
    """``git revert`` of the version changes, newest first, limited to the kustomization (pins are written anew)."""
    for release in reverts:
        patch = target.checkout.git("diff", "--no-color", "--no-ext-diff", f"{release.commit}^", release.commit, "--",
                                    target.config.kustomization) + "\n"
        applied = target.checkout.reverse_apply(patch)
        if applied.returncode != 0:
            raise GitOpsError(f"cannot revert {release.commit[:12]} cleanly ({applied.stderr.strip()}); "
                              "set the version explicitly instead (python -m tasks.operations.rollback unpin --deploy VERSION)")


@dataclass(frozen=True)
class Decision:
    """Who decided a rollback or unpin, and why: recorded in the overlay and in the commit."""

    reason: str
    by: str = dataclasses.field(default_factory=pins.operator)

    def __post_init__(self) -> None:
        if not self.reason.strip():
            raise GitOpsError("say why (--reason): the next run logs it and the next person reads it")


def _revert_to(target: Overlay, version: str, decision: Decision) -> Edit:
    """Revert every version change after the newest one to ``version``, and pin the overlay to it, in one commit."""
    releases = version_changes(history(target))
    previous = releases[0].version if releases else ""
    current_pin = target.pin()
    if previous == version and current_pin is not None and current_pin.version == version:
        return Edit(previous)  # already there, and pinned there
    pin = pins.Pin(version, decision.reason, decision.by, pins.now())
    reverts = _to_revert(releases, version) if previous != version else []
    _revert_kustomization(target, reverts)
    if target.version() != version:
        raise GitOpsError(f"reverting {', '.join(r.commit[:12] for r in reverts)} did not give back {version}; "
                          "set the version explicitly instead (python -m tasks.operations.rollback unpin --deploy VERSION)")
    reverted = [pins.Reverted(r.version, decision.reason, decision.by, pin.at) for r in reverts if r.version != version]
    if reverted or version in target.reverted():  # going back to a version that was reverted is a person's call
        target.checkout.stage(pins.add_reverted(target.path, reverted, restored=version))
    target.checkout.stage(pins.write_pin(target.path, pin))
    title = (f"Roll back {target.config.environment} index to {version} (from {previous or 'none'})" if reverts
             else f"Pin {target.config.environment} index to {version}")
    body = "\n".join(f"This reverts commit {release.commit} ({release.subject})." for release in reverts)
    pinned = f"Pinned: {escape_control(decision.reason)}\nPinned-By: {escape_control(decision.by)}"
    message = "\n\n".join(part for part in (title, body, pinned, trailers(target.config, version, previous, "rollback"))
                           if part)
    return Edit(previous, message, tuple(release.commit for release in reverts))


def rollback(config: GitOpsConfig, to: str | None = None, repository: ModelRepository | None = None, *,
             decision: Decision, workdir: Path | None = None, before_push: BeforePush | None = None) -> Result:
    """Go back to the previous (or a named) version by reverting the version changes after it, and pin it there.

    The pin (``decision``'s reason and who, and when) is written in the same commit as the revert; the
    reverted versions are recorded so that no bump deploys them again.
    """
    with checkout(config, workdir) as target:
        target.sync()
        releases = version_changes(history(Overlay(target)))
        version = check_version(to) if to else _previous_version(releases)
        if releases and releases[0].version != version:
            _to_revert(releases, version)  # fail early, with the clear message
            _require_committed(repository, version)
        # The target is fixed now; what to revert is worked out again on whatever tip the push lands on.
        pushed = commit_and_push(target, lambda tip: _revert_to(tip, version, decision), before_push)
    return Result.of(config, version, pushed)


def unpin(config: GitOpsConfig, decision: Decision, *, deploy: str | None = None,
          repository: ModelRepository | None = None, workdir: Path | None = None,
          before_push: BeforePush | None = None) -> Result:
    """Lift the overlay's pin; with ``deploy``, also set that version (a person's choice: even a reverted one).

    One commit; none when the overlay is not pinned and already names ``deploy`` (or nothing to deploy).
    """
    if deploy is not None:
        check_version(deploy)
        _require_committed(repository, deploy)

    def change(target: Overlay) -> Edit:
        previous = target.version()
        pin = target.pin()
        version = deploy or previous
        if pin is None and version == previous:
            return Edit(previous)
        title = [f"Unpin {config.environment} index" if pin else "", f"deploy {version}" if version != previous else ""]
        if pin is not None:
            (target.path / pins.PIN_FILE).unlink()
            target.checkout.stage(target.path / pins.PIN_FILE)
        if version != previous:
            target.set_version(version)
        subject = " and ".join(part for part in title if part)
        body = (f"Was {pin.describe()}\n" if pin else "") + \
            f"Unpinned: {escape_control(decision.reason)}\nUnpinned-By: {escape_control(decision.by)}"
        action = "unpin" if pin else "deploy"
        return Edit(previous, "\n\n".join((subject[0].upper() + subject[1:], body,
                                            trailers(config, version, previous, action))))

    with checkout(config, workdir) as target:
        return Result.of(config, deploy or "", commit_and_push(target, change, before_push))
