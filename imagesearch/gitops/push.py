"""The push protocol: make a change on the branch tip, commit, push; when someone pushed first, make the change
again on the new tip (where it is checked again: a pin that landed meanwhile wins). Never a force push."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from imagesearch.errors import GitOpsError
from imagesearch.gitops.client import Checkout
from imagesearch.gitops.overlay import Overlay

log = logging.getLogger(__name__)
# Called with the attempt number just before each push (tests use it to race a second clone).
BeforePush = Callable[[int], None]


@dataclass(frozen=True)
class Edit:
    """What a change did to the overlay: ``message`` is None when there was nothing to change."""

    previous: str  # the version the overlay named before
    message: str | None = None
    reverted: tuple[str, ...] = ()
    skipped: str | None = None  # why nothing was changed when an operator's decision (a pin, a revert) forbids it


# Edits the overlay of a checkout synced to the branch tip.
Change = Callable[[Overlay], Edit]


def commit_and_push(target: Checkout, change: Change, before_push: BeforePush | None = None) -> tuple[Edit, str | None, int]:
    """Apply ``change`` on the branch tip, commit and push it; on a concurrent push, make it again on the new tip.

    The change is re-made rather than rebased so that it re-reads the tip: a pin or a newer version that landed
    meanwhile is honoured.
    Returns (the edit, the pushed commit or None when there was nothing to change, the push attempts made).
    """
    target.sync()
    edit = change(Overlay(target))
    if edit.message is None:
        return edit, None, 0
    target.commit(edit.message)
    attempts = target.config.push_retries + 1
    for attempt in range(1, attempts + 1):
        if before_push is not None:
            before_push(attempt)
        if target.push():
            return edit, target.head(), attempt
        log.warning("push rejected (attempt %d of %d): %s moved on; making the change again on the new tip",
                    attempt, attempts, target.config.branch)
        target.sync()
        edit = change(Overlay(target))
        if edit.message is None:  # moot now, or forbidden by a pin that landed first
            return edit, None, attempt
        target.commit(edit.message)
    raise GitOpsError(f"push to {target.config.url} rejected {attempts} times in a row; giving up, try again later")
