"""Deploy history: every change of an overlay's index version or pin, parsed from one ``git log -p`` pass."""

from __future__ import annotations

from dataclasses import dataclass

from imagesearch import kustomize, pins
from imagesearch.gitops.overlay import Overlay
from imagesearch.text import escape_control

ACTION_TRAILER = "Rollout-Action"


@dataclass(frozen=True)
class Release:
    """One commit that changed the overlay's index version or its pin.

    ``action``: deploy, rollback, unpin, promote (from the commit's Rollout-Action trailer; deploy if none).
    ``pin``: what the commit did to the pin ("pinned to V by ... : reason", "unpinned", or "").
    """

    commit: str
    version: str
    previous: str
    author: str
    date: str
    subject: str
    action: str = "deploy"
    pin: str = ""

    @property
    def version_changed(self) -> bool:
        return self.version != self.previous or self.action == "bootstrap"


def _diff_sections(diff: str) -> dict[str, tuple[list[str], list[str]]]:
    """path -> (added lines, removed lines) of a ``git log -p --unified=0`` record."""
    sections: dict[str, tuple[list[str], list[str]]] = {}
    current: tuple[list[str], list[str]] = ([], [])
    for line in diff.splitlines():
        if line.startswith("diff --git "):
            current = sections.setdefault(line.rsplit(" b/", 1)[-1], ([], []))
        elif line.startswith(("+", "-")) and not line.startswith(("+++", "---")):
            current[0 if line[0] == "+" else 1].append(line[1:])
    return sections


def _pin_change(added: list[str], removed: list[str]) -> str:
    if added:
        return pins.parse_pin("\n".join(added)).describe()
    return "unpinned" if removed else ""


def history(source: Overlay) -> list[Release]:
    """Every change of the overlay's version or pin on the branch, newest first (one ``git log -p`` pass)."""
    config = source.config
    pin_path = config.overlay_file(pins.PIN_FILE)
    log_text = source.checkout.git(
        "log", "--first-parent", "--diff-merges=first-parent", "-p", "--unified=0", "--no-color", "--no-ext-diff",
        f"--format=%x00%H%x1f%an%x1f%aI%x1f%s%x1f%(trailers:key={ACTION_TRAILER},valueonly,separator=%x2C)",
        source.checkout.upstream, "--", config.kustomization, pin_path,
    )
    releases = []
    for record in log_text.split("\x00")[1:]:
        header, _, diff = record.partition("\n")
        sha, author, date, subject, action = header.split("\x1f", 4)
        author, subject = escape_control(author), escape_control(subject)  # printed by `history`: never raw
        sections = _diff_sections(diff)
        values: dict[str, str] = {}  # "+": the version this commit set, "-": the one it replaced
        added, removed = sections.get(config.kustomization, ([], []))
        for sign, lines in (("+", added), ("-", removed)):
            for line in lines:
                value = kustomize.literal_in_line(line, kustomize.VERSION_KEY)
                if value is not None:
                    values[sign] = value
        pin = _pin_change(*sections.get(pin_path, ([], [])))
        if "-" not in values and "+" in values:
            releases.append(Release(sha, values["+"], "", author, date, subject, "bootstrap", pin))
        elif ("+" in values and values["+"] != values["-"]) or pin:
            version = values.get("+") or source.version(sha)
            releases.append(Release(sha, version, values.get("-", version), author, date, subject,
                                    action.strip() or "deploy", pin))
    return releases


def version_changes(releases: list[Release]) -> list[Release]:
    """The releases that changed the version (a pin or unpin alone did not)."""
    return [release for release in releases if release.version_changed]
