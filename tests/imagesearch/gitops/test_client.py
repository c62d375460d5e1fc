"""The git CLI wrapper on real repos: clone and sync to the tip, a refused push is told apart from a failed one."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from imagesearch.errors import GitOpsError
from imagesearch.gitops.bootstrap import bootstrap
from imagesearch.gitops.client import Checkout, checkout, git, scrub
from imagesearch.gitops.config import GitOpsConfig
from tests.git_http_server import GitHttpServer
from tests.gitops.support import clone


def test_sync_clones_then_follows_the_branch_tip(tmp_path: Path, config: GitOpsConfig) -> None:
    mine, theirs = clone(config, tmp_path / "mine"), clone(config, tmp_path / "theirs")
    (theirs.path / "NOTE").write_text("hello\n")
    theirs.stage(theirs.path / "NOTE")
    pushed = theirs.commit("Add a note")
    assert theirs.push()
    (mine.path / "stray").write_text("left over\n")  # an untracked file from an earlier run is cleaned away
    assert mine.sync() == pushed == mine.head()
    assert (mine.path / "NOTE").read_text() == "hello\n" and not (mine.path / "stray").exists()
    assert mine.git("log", "-1", "--format=%an <%ae>") == "Test Bot <bot@test>"


def test_a_push_behind_the_remote_is_refused_not_failed(tmp_path: Path, config: GitOpsConfig) -> None:
    first, second = clone(config, tmp_path / "first"), clone(config, tmp_path / "second")
    for target, name in ((first, "a"), (second, "b")):
        (target.path / name).write_text(name)
        target.stage(target.path / name)
        target.commit(f"Add {name}")
    assert first.push()
    assert second.push() is False  # not a fast-forward: the caller remakes its change on the new tip
    broken = Checkout(dataclasses.replace(config, url=str(tmp_path / "gone.git")), second.path)
    broken.git("remote", "set-url", "origin", str(tmp_path / "gone.git"))
    with pytest.raises(GitOpsError, match=r"git push to .*gone\.git failed"):
        broken.push()


def test_clone_failure_says_how_to_make_the_repo(tmp_path: Path) -> None:
    with checkout(GitOpsConfig(url=str(tmp_path / "missing.git"))) as target, \
            pytest.raises(GitOpsError, match=r"tasks\.operations\.rollback init"):
        target.sync()
    with pytest.raises(GitOpsError, match="git rev-parse HEAD failed: fatal: not a git repository"):
        git(tmp_path, "rev-parse", "HEAD")


def served(server: GitHttpServer, name: str) -> None:
    """A bootstrapped GitOps repo ``name`` on the HTTP server."""
    assert bootstrap(GitOpsConfig(url=str(server.repo_path(name))))


def test_over_http_the_credential_goes_through_the_helper_and_no_message_or_file_holds_it(
        git_http_server: GitHttpServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    name = tmp_path.name
    served(git_http_server, name)
    push, read = git_http_server.push_token, git_http_server.read_token
    monkeypatch.setenv("GIT_CONFIG_COUNT", "1")  # the caller's own git config through the environment is kept
    monkeypatch.setenv("GIT_CONFIG_KEY_0", "core.askPass")
    monkeypatch.setenv("GIT_CONFIG_VALUE_0", "false")

    # The push credential, from the token setting: clone, commit, push.
    pusher = Checkout(GitOpsConfig(git_http_server.url(name), username="bot", token=push), tmp_path / "pusher")
    pusher.sync()
    (pusher.path / "NOTE").write_text("pushed over HTTP\n")
    pusher.stage(pusher.path / "NOTE")
    pusher.commit("Add a note")
    assert pusher.push()
    # The token-in-URL form: the clone works, and neither its remote nor any file in it names the token.
    reader = Checkout(GitOpsConfig(git_http_server.url(name, token=read)), tmp_path / "reader")
    assert reader.sync() == pusher.head()
    assert reader.git("remote", "get-url", "origin") == git_http_server.url(name)
    assert not [path for path in reader.path.rglob("*") if path.is_file() and read.encode() in path.read_bytes()]
    assert reader.sync() == pusher.head()  # a kept clone fetches with the credential too

    # A read-only credential cannot push: the server's 403, with no token in the message.
    (reader.path / "NOTE").write_text("not allowed\n")
    reader.stage(reader.path / "NOTE")
    reader.commit("Try to push with the read-only credential")
    with pytest.raises(GitOpsError, match=r"(?s)git push to http://127\.0\.0\.1:\d+/.* failed: .*403") as refused:
        reader.push()
    # A refused credential and a wrong URL, in either form: the clone fails, naming neither.
    wrong = f"wrong-{push}"
    failures = [refused]
    for config in (GitOpsConfig(git_http_server.url(name, token=wrong)), GitOpsConfig(git_http_server.url(name), token=wrong),
                   GitOpsConfig(git_http_server.url("missing", token=push))):
        with checkout(config) as target, pytest.raises(GitOpsError, match="cannot clone branch main") as failed:
            target.sync()
        failures.append(failed)
    for failure in failures:
        message = str(failure.value)
        assert push not in message and read not in message and "wrong-" not in message, message
        assert "@127.0.0.1" not in message, message
    assert "403" in str(refused.value) and "not found" in str(failures[-1].value)
    statuses = {status for _, path, _, status in git_http_server.requests if f"/{name}.git/" in path}
    assert {200, 401, 403} <= statuses


def test_scrub_removes_userinfo_and_secrets() -> None:
    assert scrub("fatal: for 'https://t0k@h/x': t0k was refused", ("t0k",)) == "fatal: for 'https://h/x': *** was refused"
