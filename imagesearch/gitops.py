"""The GitOps repo: the version-bump commit, deploy history, ``git revert`` rollback, local bootstrap.

Everything goes through the real ``git`` CLI. One overlay's ``kustomization.yaml`` holds the index
version (a ``configMapGenerator`` literal); changing it is the whole deployment. Beside it, ``pin.yaml`` and
``reverted.yaml`` (see ``imagesearch.pins``) hold an operator's decisions: a pinned overlay is left alone by
every bump, and a reverted version is never deployed again automatically. Pushes are plain fast-forward
pushes: when one is rejected (someone pushed first) the change is made again on the new tip, where it is
checked again (a pin that landed meanwhile wins), and pushed again a bounded number of times. Nothing is
ever force-pushed, so history keeps every deploy, rollback, pin and promotion. Argo CD turns what lands on the
branch into pods (``python -m localdev.argocd`` does it on one machine).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from imagesearch import kustomize, pins
from imagesearch.artifacts import check_version, is_committed
from imagesearch.errors import GitOpsError, VersionNotCommittedError
from imagesearch.repository import ModelRepository
from imagesearch.settings import PROJECT_ROOT, Settings

log = logging.getLogger(__name__)
# What git says when a concurrent push moved the ref under ours (a race to retry, unlike a hook's refusal).
RACE_MARKERS = ("cannot lock ref", "failed to update ref", "but expected", "incorrect old value")
SOURCE_DIR = PROJECT_ROOT / "gitops"
# Called with the attempt number just before each push (tests use it to race a second clone).
BeforePush = Callable[[int], None]
# Edits a checkout synced to the branch tip (see Edit).
Change = Callable[["Checkout"], "Edit"]


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
        return f"{self.overlay.strip('/')}/{kustomize.KUSTOMIZATION}"

    @property
    def environment(self) -> str:
        return PurePosixPath(self.overlay).name


def git(cwd: Path | None, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"}
    result = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, env=env, check=False)
    if check and result.returncode != 0:
        raise GitOpsError(f"git {' '.join(args[:2])} failed: {(result.stderr or result.stdout).strip()}")
    return result


class Checkout:
    """A working clone of the GitOps repo that tracks one branch."""

    def __init__(self, config: GitOpsConfig, path: Path) -> None:
        self.config = config
        self.path = path
        self.upstream = f"origin/{config.branch}"

    def git(self, *args: str, check: bool = True) -> str:
        return git(self.path, *args, check=check).stdout.strip()

    def configure(self) -> None:
        for key, value in (("user.name", self.config.author_name), ("user.email", self.config.author_email),
                           ("commit.gpgsign", "false")):
            self.git("config", key, value)

    def sync(self) -> str:
        """Clone, or fetch and reset to the branch tip; the tip's commit id."""
        if not (self.path / ".git").exists():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            result = git(None, "clone", "--quiet", "--branch", self.config.branch, "--", self.config.url, str(self.path),
                         check=False)
            if result.returncode != 0:
                raise GitOpsError(f"cannot clone branch {self.config.branch} of the GitOps repo {self.config.url}: "
                                  f"{result.stderr.strip()} (a local repo is created by `python -m tasks.rollback init`)")
        else:
            self.git("remote", "set-url", "origin", self.config.url)
            self.fetch()
            self.git("checkout", "--quiet", "--force", "-B", self.config.branch, self.upstream)
            self.git("clean", "-fdxq")
        self.configure()
        return self.head()

    def fetch(self) -> None:
        self.git("fetch", "--quiet", "origin", f"+refs/heads/{self.config.branch}:refs/remotes/{self.upstream}")

    def head(self) -> str:
        return self.git("rev-parse", "HEAD")

    @property
    def kustomization(self) -> Path:
        return self.path / self.config.kustomization

    @property
    def overlay(self) -> Path:
        return self.path / self.config.overlay

    def read_literal(self, key: str, rev: str | None = None) -> str:
        if rev is None:
            if not self.kustomization.is_file():
                raise GitOpsError(f"the GitOps repo has no {self.config.kustomization}")
            text = self.kustomization.read_text()
        else:
            text = self.git("show", f"{rev}:{self.config.kustomization}")
        return kustomize.read_literal(text, key)

    def version(self, rev: str | None = None) -> str:
        return self.read_literal(kustomize.VERSION_KEY, rev)

    def set_literal(self, key: str, value: str) -> None:
        self.kustomization.write_text(kustomize.set_literal(self.kustomization.read_text(), key, value))
        self.git("add", "--", self.config.kustomization)

    def commit(self, message: str) -> str:
        self.git("commit", "--quiet", "--no-verify", "-m", message)
        return self.head()

    def push(self) -> bool:
        """True once pushed; False when the remote moved on (rejected as not a fast-forward)."""
        result = git(self.path, "push", "--porcelain", "origin", f"HEAD:refs/heads/{self.config.branch}", check=False)
        if result.returncode == 0:
            return True
        if "[rejected]" in result.stdout:  # not a fast-forward; "[remote rejected]" (a hook said no) is final
            return False
        output = result.stdout + result.stderr
        if "[remote rejected]" in output and any(race in output for race in RACE_MARKERS):
            return False  # another push updated the branch while ours was landing: fetch, rebase, retry

        raise GitOpsError(f"git push to {self.config.url} failed: {(result.stderr or result.stdout).strip()}")

    def overlay_file(self, name: str) -> str:
        return f"{self.config.overlay.strip('/')}/{name}"

    def pin(self) -> pins.Pin | None:
        return pins.read_pin(self.overlay)

    def reverted(self) -> dict[str, pins.Reverted]:
        return pins.read_reverted(self.overlay)

    def stage(self, path: Path) -> None:
        self.git("add", "--all", "--", str(path.relative_to(self.path)))


@contextlib.contextmanager
def checkout(config: GitOpsConfig, workdir: Path | None = None) -> Iterator[Checkout]:
    """A checkout in ``workdir`` (kept and reused), or a fresh clone in a temporary folder."""
    if workdir is not None:
        yield Checkout(config, workdir)
        return
    with tempfile.TemporaryDirectory(prefix="gitops-") as scratch:
        yield Checkout(config, Path(scratch) / "repo")


@dataclass(frozen=True)
class Edit:
    """What a change did to the worktree: ``message`` is None when there was nothing to change."""

    previous: str  # the version the overlay named before
    message: str | None = None
    reverted: tuple[str, ...] = ()
    skipped: str | None = None  # why nothing was changed when an operator's decision (a pin, a revert) forbids it


def commit_and_push(target: Checkout, change: Change, before_push: BeforePush | None = None) -> tuple[Edit, str | None, int]:
    """Apply ``change`` on the branch tip, commit and push it; on a concurrent push, make it again on the new tip.

    The change is re-made rather than rebased so that it re-reads the tip: a pin or a newer version that landed
    meanwhile is honoured.
    Returns (the edit, the pushed commit or None when there was nothing to change, the push attempts made).
    """
    target.sync()
    edit = change(target)
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
        edit = change(target)
        if edit.message is None:  # moot now, or forbidden by a pin that landed first
            return edit, None, attempt
        target.commit(edit.message)
    raise GitOpsError(f"push to {target.config.url} rejected {attempts} times in a row; giving up, try again later")


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


def history(source: Checkout) -> list[Release]:
    """Every change of the overlay's version or pin on the branch, newest first (one ``git log -p`` pass)."""
    pin_path = source.overlay_file(pins.PIN_FILE)
    log_text = source.git(
        "log", "--first-parent", "--diff-merges=first-parent", "-p", "--unified=0", "--no-color", "--no-ext-diff",
        f"--format=%x00%H%x1f%an%x1f%aI%x1f%s%x1f%(trailers:key={ACTION_TRAILER},valueonly,separator=%x2C)",
        source.upstream, "--", source.config.kustomization, pin_path,
    )
    releases = []
    for record in log_text.split("\x00")[1:]:
        header, _, diff = record.partition("\n")
        sha, author, date, subject, action = header.split("\x1f", 4)
        sections = _diff_sections(diff)
        values: dict[str, str] = {}  # "+": the version this commit set, "-": the one it replaced
        added, removed = sections.get(source.config.kustomization, ([], []))
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


def _trailers(config: GitOpsConfig, version: str, previous: str, action: str = "deploy") -> str:
    return (f"Index-Version: {version}\nPrevious-Version: {previous or 'none'}\nOverlay: {config.overlay}\n"
            f"{ACTION_TRAILER}: {action}")


def bump_message(config: GitOpsConfig, version: str, previous: str, items: int | None,
                 metrics: Mapping[str, float] | None, *, title: str | None = None, action: str = "deploy") -> str:
    body = []
    if items is not None:
        body.append(f"Items: {items}")
    if metrics:
        body.append("Metrics: " + ", ".join(f"{name}={value:.4g}" for name, value in sorted(metrics.items())))
    paragraphs = [title or f"Deploy index {version} to {config.environment}", "\n".join(body),
                  _trailers(config, version, previous, action)]
    return "\n\n".join(part for part in paragraphs if part)


def pinned_message(config: GitOpsConfig, pin: pins.Pin) -> str:
    return (f"{config.overlay} is {pin.describe()}; the overlay is left as it is "
            "(lift the pin with `python -m tasks.rollback unpin`)")


def reverted_message(version: str, reverted: pins.Reverted) -> str:
    return (f"index {version} was reverted by {reverted.by} at {reverted.at} ({reverted.reason}); a reverted version "
            f"is never deployed again automatically (a person can: `python -m tasks.rollback unpin --deploy {version}`)")


def forbidden(target: Checkout, version: str, force: bool = False) -> str | None:
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
        raise VersionNotCommittedError(f"index version {version} is not committed in the model repository {repository.uri}: "
                          "refusing to deploy it")


def bump(config: GitOpsConfig, version: str, repository: ModelRepository, *, items: int | None = None,
         metrics: Mapping[str, float] | None = None, workdir: Path | None = None,
         before_push: BeforePush | None = None) -> Result:
    """Set the overlay's index version and push one commit naming it (none if it is already there).

    A pinned overlay, or a ``version`` that was reverted, is left alone: the result's ``skipped`` says why.
    """
    check_version(version)
    _require_committed(repository, version)

    def change(target: Checkout) -> Edit:
        previous = target.version()
        if reason := forbidden(target, version):
            return Edit(previous, skipped=reason)
        # Versions sort by build time: a run that lost a race to a newer version must not roll it back.
        if previous >= version:
            return Edit(previous)
        target.set_literal(kustomize.VERSION_KEY, version)
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


def _revert_kustomization(target: Checkout, reverts: list[Release]) -> None:
    """``git revert`` of the version changes, newest first, limited to the kustomization (pins are written anew)."""
    for release in reverts:
        patch = target.git("diff", "--no-color", "--no-ext-diff", f"{release.commit}^", release.commit, "--",
                           target.config.kustomization) + "\n"
        applied = subprocess.run(["git", "apply", "--reverse", "--3way", "--index", "-"], cwd=target.path, input=patch,
                                 capture_output=True, text=True, check=False)
        if applied.returncode != 0:
            raise GitOpsError(f"cannot revert {release.commit[:12]} cleanly ({applied.stderr.strip()}); "
                              "set the version explicitly instead (python -m tasks.rollback unpin --deploy VERSION)")


@dataclass(frozen=True)
class Decision:
    """Who decided a rollback or unpin, and why: recorded in the overlay and in the commit."""

    reason: str
    by: str = dataclasses.field(default_factory=pins.operator)

    def __post_init__(self) -> None:
        if not self.reason.strip():
            raise GitOpsError("say why (--reason): the next run logs it and the next person reads it")


def _revert_to(target: Checkout, version: str, decision: Decision) -> Edit:
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
                          "set the version explicitly instead (python -m tasks.rollback unpin --deploy VERSION)")
    reverted = [pins.Reverted(r.version, decision.reason, decision.by, pin.at) for r in reverts if r.version != version]
    if reverted or version in target.reverted():  # going back to a version that was reverted is a person's call
        target.stage(pins.add_reverted(target.overlay, reverted, restored=version))
    target.stage(pins.write_pin(target.overlay, pin))
    title = (f"Roll back {target.config.environment} index to {version} (from {previous or 'none'})" if reverts
             else f"Pin {target.config.environment} index to {version}")
    body = "\n".join(f"This reverts commit {release.commit} ({release.subject})." for release in reverts)
    pinned = f"Pinned: {decision.reason}\nPinned-By: {decision.by}"
    message = "\n\n".join(part for part in (title, body, pinned, _trailers(target.config, version, previous, "rollback"))
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
        releases = version_changes(history(target))
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

    def change(target: Checkout) -> Edit:
        previous = target.version()
        pin = target.pin()
        version = deploy or previous
        if pin is None and version == previous:
            return Edit(previous)
        title = [f"Unpin {config.environment} index" if pin else "", f"deploy {version}" if version != previous else ""]
        if pin is not None:
            (target.overlay / pins.PIN_FILE).unlink()
            target.stage(target.overlay / pins.PIN_FILE)
        if version != previous:
            target.set_literal(kustomize.VERSION_KEY, version)
        subject = " and ".join(part for part in title if part)
        body = (f"Was {pin.describe()}\n" if pin else "") + f"Unpinned: {decision.reason}\nUnpinned-By: {decision.by}"
        action = "unpin" if pin else "deploy"
        return Edit(previous, "\n\n".join((subject[0].upper() + subject[1:], body,
                                            _trailers(config, version, previous, action))))

    with checkout(config, workdir) as target:
        return Result.of(config, deploy or "", commit_and_push(target, change, before_push))


_SCP_LIKE = re.compile(r"^[\w.-]+@[\w.-]+:")


def local_repo_path(url: str) -> Path | None:
    """The folder of a local GitOps repo URL (a path or file://), None for a remote one."""
    if url.startswith("file://"):
        return Path(url[len("file://") :])
    if "://" in url or _SCP_LIKE.match(url):
        return None
    return Path(url)


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
            work.set_literal(kustomize.REPOSITORY_KEY, model_repository)
        work.git("add", "--all")
        work.commit("Bootstrap the GitOps repo from the project's gitops/ folder")
        work.git("push", "--quiet", str(path.resolve()), f"HEAD:refs/heads/{config.branch}")
    return True
