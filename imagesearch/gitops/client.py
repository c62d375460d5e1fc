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
from imagesearch.uri import redact_userinfo

# What git says when a concurrent push moved the ref under ours (a race to retry, unlike a hook's refusal).
RACE_MARKERS = ("cannot lock ref", "failed to update ref", "but expected", "incorrect old value")
# The credential reaches git through its environment: a shell credential helper that answers `get` from two
# variables, set on git's own process only (never in a URL, an argument or a file).
USERNAME_VARIABLE, PASSWORD_VARIABLE = "GITOPS_CREDENTIAL_USERNAME", "GITOPS_CREDENTIAL_PASSWORD"
CREDENTIAL_HELPER = (f'!f() {{ test "$1" = get && printf "username=%s\\npassword=%s\\n" "${USERNAME_VARIABLE}" '
                     f'"${PASSWORD_VARIABLE}"; }}; f')


def git_environment(credential: tuple[str, str] | None) -> dict[str, str]:
    """git's environment: no prompts, C messages, and with ``credential`` the only credential helper it asks."""
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"}
    if credential is not None:
        count = int(env.get("GIT_CONFIG_COUNT") or 0)
        # An empty credential.helper first: the helpers of the user's or system's git config are not asked.
        for offset, value in enumerate(("", CREDENTIAL_HELPER)):
            env[f"GIT_CONFIG_KEY_{count + offset}"], env[f"GIT_CONFIG_VALUE_{count + offset}"] = "credential.helper", value
        env.update({"GIT_CONFIG_COUNT": str(count + 2), USERNAME_VARIABLE: credential[0], PASSWORD_VARIABLE: credential[1]})
    return env


def scrub(text: str, secrets: tuple[str, ...] = ()) -> str:
    """git's output as a message may carry it: no URL userinfo, none of ``secrets``."""
    text = redact_userinfo(text)
    for secret in secrets:
        text = text.replace(secret, "***")
    return text


def git(cwd: Path | None, *args: str, check: bool = True, stdin: str | None = None,
        config: GitOpsConfig | None = None) -> subprocess.CompletedProcess[str]:
    """Run git; with ``config``, its credential (if any) is offered to the remote. A failure's message is scrubbed."""
    env = git_environment(config.credential if config is not None else None)
    result = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, env=env, check=False, input=stdin)
    if check and result.returncode != 0:
        output = scrub((result.stderr or result.stdout).strip(), config.secrets if config is not None else ())
        raise GitOpsError(f"git {scrub(' '.join(args[:2]))} failed: {output}")
    return result


class Checkout:
    """A working clone of the GitOps repo that tracks one branch."""

    def __init__(self, config: GitOpsConfig, path: Path) -> None:
        self.config = config
        self.path = path
        self.upstream = f"origin/{config.branch}"

    def git(self, *args: str, check: bool = True) -> str:
        return git(self.path, *args, check=check, config=self.config).stdout.strip()

    def scrub(self, text: str) -> str:
        return scrub(text, self.config.secrets)

    def configure(self) -> None:
        for key, value in (("user.name", self.config.author_name), ("user.email", self.config.author_email),
                           ("commit.gpgsign", "false")):
            self.git("config", key, value)

    def sync(self) -> str:
        """Clone, or fetch and reset to the branch tip; the tip's commit id."""
        if not (self.path / ".git").exists():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            result = git(None, "clone", "--quiet", "--branch", self.config.branch, "--", self.config.url, str(self.path),
                         check=False, config=self.config)
            if result.returncode != 0:
                raise GitOpsError(f"cannot clone branch {self.config.branch} of the GitOps repo {self.config.url}: "
                                  f"{self.scrub(result.stderr.strip())} (a local repo is created by "
                                  "`python -m tasks.operations.rollback init`)")
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
        return git(self.path, "apply", "--reverse", "--3way", "--index", "-", check=False, stdin=patch, config=self.config)

    def commit(self, message: str) -> str:
        self.git("commit", "--quiet", "--no-verify", "-m", message)
        return self.head()

    def push(self) -> bool:
        """True once pushed; False when the remote moved on (rejected as not a fast-forward)."""
        result = git(self.path, "push", "--porcelain", "origin", f"HEAD:refs/heads/{self.config.branch}", check=False,
                     config=self.config)
        if result.returncode == 0:
            return True
        if "[rejected]" in result.stdout:  # not a fast-forward; "[remote rejected]" (a hook said no) is final
            return False
        output = result.stdout + result.stderr
        if "[remote rejected]" in output and any(race in output for race in RACE_MARKERS):
            return False  # another push updated the branch while ours was landing: fetch, rebase, retry

        raise GitOpsError(f"git push to {self.config.url} failed: {self.scrub((result.stderr or result.stdout).strip())}")


@contextlib.contextmanager
def checkout(config: GitOpsConfig, workdir: Path | None = None) -> Iterator[Checkout]:
    """A checkout in ``workdir`` (kept and reused), or a fresh clone in a temporary folder."""
    if workdir is not None:
        yield Checkout(config, workdir)
        return
    with tempfile.TemporaryDirectory(prefix="gitops-") as scratch:
        yield Checkout(config, Path(scratch) / "repo")
