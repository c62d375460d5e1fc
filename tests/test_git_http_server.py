"""The test git server itself: what H4's cluster rehearsal and the secret tests rely on (a read-only credential that
can fetch but never push, a push credential, 401 without one)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.git_http_server import GitHttpServer


def run_git(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"}
    return subprocess.run(["git", "-c", "user.name=Test", "-c", "user.email=test@test", *args], cwd=cwd,
                          capture_output=True, text=True, env=environment, check=False)


def test_read_token_clones_but_cannot_push_and_push_token_pushes(git_http_server: GitHttpServer, tmp_path: Path) -> None:
    name = tmp_path.name
    bare = git_http_server.repo_path(name)
    assert run_git(tmp_path, "init", "--quiet", "--bare", "--initial-branch=main", str(bare)).returncode == 0
    work = tmp_path / "work"
    assert run_git(tmp_path, "init", "--quiet", "--initial-branch=main", str(work)).returncode == 0
    (work / "big.bin").write_bytes(os.urandom(2_000_000))  # over git's 1 MiB post buffer: a chunked request body
    assert run_git(work, "add", "big.bin").returncode == 0
    assert run_git(work, "commit", "--quiet", "-m", "first").returncode == 0

    refused = run_git(work, "push", git_http_server.url(name, git_http_server.read_token), "HEAD:refs/heads/main")
    assert refused.returncode != 0 and "403" in refused.stderr
    anonymous = run_git(work, "push", git_http_server.url(name), "HEAD:refs/heads/main")
    assert anonymous.returncode != 0
    assert run_git(work, "push", git_http_server.url(name, git_http_server.push_token), "HEAD:refs/heads/main").returncode == 0

    clone = run_git(tmp_path, "clone", "--quiet", git_http_server.url(name, git_http_server.read_token), str(tmp_path / "c"))
    assert clone.returncode == 0, clone.stderr
    assert (tmp_path / "c" / "big.bin").read_bytes() == (work / "big.bin").read_bytes()
    assert run_git(tmp_path, "clone", "--quiet", git_http_server.url(name, "wrong"), str(tmp_path / "d")).returncode != 0
    statuses = {(method, status) for method, path, _, status in git_http_server.requests if f"/{name}.git/" in path}
    assert {("GET", 401), ("GET", 403), ("POST", 200)} <= statuses


def test_a_server_stops_and_serves_its_own_tokens(tmp_path: Path) -> None:
    server = GitHttpServer(tmp_path / "served", read_token="r", push_token="p").start()
    try:
        assert server.url("x") == f"http://127.0.0.1:{server.port}/x.git"
        assert server.url("x", "p") == f"http://p@127.0.0.1:{server.port}/x.git"
    finally:
        server.stop()
    assert server.access("Basic cDo=") == ("p", "push")  # "p:"
    assert server.access("Basic dXNlcjpy") == ("user", "read")  # "user:r"
    assert server.access("Bearer p") == (None, None)
