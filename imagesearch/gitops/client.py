"""The git CLI wrapper: run git, and a working clone that tracks one branch of the GitOps repo."""

from __future__ import annotations

import contextlib
import os
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from imagesearch.errors import GitOpsError
from imagesearch.gitops.config import GitOpsConfig

# What git says when a concurrent push moved the ref under ours (a race to retry, unlike a hook's refusal).
RACE_MARKERS = ("cannot lock ref", "failed to update ref", "but expected", "incorrect old value")


def git(cwd: Path | None, *args: str, check: bool = True, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"}
    result = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, env=env, check=False, input=stdin)
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

    def show(self, rev: str, path: str) -> str:
        """A file's text at ``rev`` (``path`` relative to the repo root)."""
        return self.git("show", f"{rev}:{path}")

    def stage(self, path: Path) -> None:
        self.git("add", "--all", "--", str(path.relative_to(self.path)))

    def reverse_apply(self, patch: str) -> subprocess.CompletedProcess[str]:
        """``git apply --reverse --3way --index`` of ``patch``; the caller reads the outcome."""
        return git(self.path, "apply", "--reverse", "--3way", "--index", "-", check=False, stdin=patch)

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


@contextlib.contextmanager
def checkout(config: GitOpsConfig, workdir: Path | None = None) -> Iterator[Checkout]:
    """A checkout in ``workdir`` (kept and reused), or a fresh clone in a temporary folder."""
    if workdir is not None:
        yield Checkout(config, workdir)
        return
    with tempfile.TemporaryDirectory(prefix="gitops-") as scratch:
        yield Checkout(config, Path(scratch) / "repo")
