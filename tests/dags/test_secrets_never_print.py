"""Secrets never print: whole DAG runs (``airflow dags test``, local mode) with canary tokens as the GitOps
credentials, against a real git server over HTTP on loopback, and every CLI's ``--help`` with them set.

Three runs on one catalog, each with a different credential:

1. the read-only token in the older URL form (``http://<token>@host/...``): snapshot and evaluate read what serves,
   publish publishes, deploy's push is refused (403) and the run fails;
2. the push token from ``IMAGESEARCH_GITOPS_TOKEN``, the URL clean: the run deploys;
3. a token the server refuses, in the URL: snapshot cannot read what serves (a warning), evaluate cannot either
   (it fails).

Then ``history`` reads the repo with the read-only token in the URL. No canary may appear in the runs' output
(the task logs ``airflow dags test`` prints), any file of the Airflow home (its task log files, its database:
XComs, rendered fields, the run note), any file of the model repository (the run workspaces, the step summaries),
the GitOps repo's commits (messages and patches), or ``history``'s output.
"""

from __future__ import annotations

import os
import re
import secrets
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from imagesearch import gitops
from tests.conftest import ROOT
from tests.dags.airflow_support import dags_test, pipeline_env, run_conf, task_states, xcoms
from tests.git_http_server import GitHttpServer

pytestmark = pytest.mark.slow
CLI_PACKAGES = ("tasks/steps", "tasks/operations", "serving", "localdev")


def canary(kind: str) -> str:
    return f"canary{kind}{secrets.token_hex(12)}"


READ, PUSH, REFUSED = canary("read"), canary("push"), canary("refused")
CANARIES = (READ, PUSH, REFUSED)


def leaks(text: str | bytes, where: str) -> list[str]:
    data = text.encode() if isinstance(text, str) else text
    return [f"{where}: {name}" for name in CANARIES if name.encode() in data]


def leaks_in_files(root: Path) -> list[str]:
    found = [leak for path in root.rglob("*") if path.is_file() and not path.is_symlink()
             for leak in leaks(path.read_bytes(), str(path))]
    for database in root.rglob("*.db"):  # the same rows as text, whatever the page layout
        with sqlite3.connect(database) as db:
            found += leaks("\n".join(db.iterdump()), f"{database} (dump)")
    return found


def leaks_in_git(repo: Path) -> list[str]:
    """Every commit on every ref: messages, authors and patches."""
    text = subprocess.run(["git", "log", "--all", "-p", "--format=fuller"], cwd=repo, capture_output=True, text=True,
                          check=True).stdout
    assert "Bootstrap the GitOps repo" in text
    return leaks(text, f"git log of {repo}")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GitHttpServer]:
    with GitHttpServer(tmp_path_factory.mktemp("git-http"), read_token=READ, push_token=PUSH) as started:
        yield started


def test_three_runs_with_canary_credentials_print_none_of_them(server: GitHttpServer, photo_catalog: Path,
                                                               tmp_path: Path) -> None:
    home, models = tmp_path / "airflow-home", tmp_path / "models"
    bare = server.repo_path("gitops")
    assert gitops.bootstrap(gitops.GitOpsConfig(url=str(bare)), model_repository=str(models))
    outputs: list[tuple[str, str]] = []

    # 1. The read-only token in the URL: reading works, the push is refused.
    env = pipeline_env(tmp_path, IMAGESEARCH_GITOPS_REPO_URL=server.url("gitops", token=READ), IMAGESEARCH_TASK_RETRIES="1")
    first = dags_test(home, env, run_conf(photo_catalog))
    log = first.stdout + first.stderr
    outputs.append(("run 1", log))
    assert first.returncode != 0, log[-6000:]
    states = task_states(home)
    assert states[("evaluate", -1)][0] == "success" and states[("publish", -1)][0] == "success", states
    assert states[("deploy", -1)][0] == "failed", states
    assert re.search(r"git push to http://127\.0\.0\.1:\d+/gitops\.git failed: .*403", log, re.S), log[-6000:]
    refused = [(method, path) for method, path, user, status in server.requests if user == READ and status == 403]
    assert refused, "the read-only token reached the server and its push was refused"

    # 2. The push token from the token setting, the URL clean: deployed.
    env = pipeline_env(tmp_path, IMAGESEARCH_GITOPS_REPO_URL=server.url("gitops"), IMAGESEARCH_GITOPS_TOKEN=PUSH)
    second = dags_test(home, env, run_conf(photo_catalog))
    log = second.stdout + second.stderr
    outputs.append(("run 2", log))
    assert second.returncode == 0, log[-6000:]
    deploy = xcoms(home, "deploy")["return_value"]
    assert deploy["changed"] is True and deploy["gitops_repo"] == server.url("gitops"), deploy
    assert subprocess.run(["git", "rev-parse", "main"], cwd=bare, capture_output=True, text=True,
                          check=True).stdout.strip() == deploy["commit"]

    # 3. A token the server refuses, in the URL: the clones fail, and say so without it.
    env = pipeline_env(tmp_path, IMAGESEARCH_GITOPS_REPO_URL=server.url("gitops", token=REFUSED),
                       IMAGESEARCH_TASK_RETRIES="1")
    third = dags_test(home, env, run_conf(photo_catalog))
    log = third.stdout + third.stderr
    outputs.append(("run 3", log))
    assert third.returncode != 0, log[-6000:]
    assert task_states(home)[("evaluate", -1)][0] == "failed"
    assert "cannot read the version gitops/overlays/local serves (cannot clone branch main" in log, log[-6000:]
    assert re.search(r"evaluate failed: cannot clone branch main of the GitOps repo http://127\.0\.0\.1:\d+/gitops\.git",
                     log), log[-6000:]
    assert any(user == REFUSED and status == 401 for _, _, user, status in server.requests)

    # `history` with the read-only token in the URL: it reads, and names the deploy, not the token.
    history = subprocess.run([sys.executable, "-m", "tasks.operations.rollback", "history"], cwd=ROOT, capture_output=True,
                             text=True,
                             env={**os.environ, "PYTHONPATH": str(ROOT),
                                  "IMAGESEARCH_GITOPS_REPO_URL": server.url("gitops", token=READ)}, timeout=300)
    assert history.returncode == 0 and deploy["version"] in history.stdout, history.stdout + history.stderr
    outputs.append(("history", history.stdout + history.stderr))

    found = [leak for name, text in outputs for leak in leaks(text, name)]
    found += leaks_in_files(home) + leaks_in_files(models) + leaks_in_git(bare)
    assert found == []


def cli_modules() -> list[str]:
    """Every module of the packages that runs as a command with options (serving.app takes none: it serves)."""
    return sorted(f"{package.replace('/', '.')}.{path.stem}" for package in CLI_PACKAGES
                  for path in (ROOT / package).glob("*.py") if 'if __name__ == "__main__"' in (text := path.read_text())
                  and ("parse_args(" in text or "cli.entry(" in text))


# Runs each module's --help (and each subcommand's) in one process: importing torch once, not per module.
HELP_ALL = r"""
import contextlib, io, re, runpy, sys
for module in sys.argv[1:]:
    pending, seen = [[]], set()
    while pending:
        words = pending.pop()
        sys.argv, out = [module, *words, "--help"], io.StringIO()
        sys.modules.pop(module, None)  # imported by an earlier one: run it afresh, as `python -m` does
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out), contextlib.suppress(SystemExit):
            runpy.run_module(module, run_name="__main__", alter_sys=True)
        text = out.getvalue()
        print(f"===== {module} {' '.join(words)}\n{text}")
        if not words:
            for group in re.findall(r"^\s*\{([\w,-]+)\}", text, re.M)[:1]:
                pending += [[name] for name in group.split(",") if name not in seen and not seen.add(name)]
"""


def test_no_help_output_names_a_credential(tmp_path: Path) -> None:
    modules = cli_modules()
    assert {"tasks.steps.commit_version", "tasks.operations.rollback", "tasks.operations.promote", "localdev.argocd",
            "serving.fetch"} <= set(modules)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "IMAGESEARCH_GITOPS_REPO_URL": f"https://{READ}@git.example.com/g.git",
           "IMAGESEARCH_GITOPS_TOKEN": PUSH, "IMAGESEARCH_ALERT_SMTP_URL": f"smtp://alerts:{REFUSED}@127.0.0.1:25"}
    result = subprocess.run([sys.executable, "-c", HELP_ALL, *modules], cwd=tmp_path, env=env, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    output = result.stdout + result.stderr
    for module in modules:
        assert f"===== {module} \nusage:" in output, f"{module} printed no usage"
    assert "===== tasks.operations.rollback history\nusage:" in output  # subcommands too: their options hold the defaults
    words = " ".join(output.split())  # argparse wraps help lines
    assert words.count("(default https://git.example.com/g.git)") >= 3  # rollback's subcommands, promote, argocd
    assert leaks(output, "--help") == []
