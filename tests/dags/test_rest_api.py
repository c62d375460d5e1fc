"""``make airflow``'s launcher (api-server, scheduler, dag-processor): trigger a run through the REST API v2."""

from __future__ import annotations

import contextlib
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from plugins.hooks.model_repository import ModelRepositoryHook
from scripts.airflow_local import USER
from tests.conftest import ROOT
from tests.dags.airflow_support import DAG_ID, dags_test, pipeline_env, run_conf, task_states
from tests.gitops.support import bootstrapped, rendered_version

pytestmark = pytest.mark.slow
START_TIMEOUT_S = 240
RUN_TIMEOUT_S = 600
SEARCH_PAGE = "http://search.example.test/"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Airflow:
    """A running ``python -m scripts.airflow_local serve`` and a REST client logged in with the login it printed."""

    def __init__(self, launcher: subprocess.Popen[str], client: httpx.Client, home: Path, models: Path, gitops: Any) -> None:
        self.launcher = launcher
        self.home = home
        self.client = client
        self.models = models
        self.gitops = gitops

    def wait_for(self, path: str, done: Any, timeout_s: float, what: str) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while True:
            assert self.launcher.poll() is None, "the launcher exited"
            response = self.client.get(path)
            if response.status_code == 200 and done(body := response.json()):
                return body
            assert time.monotonic() < deadline, f"{what}: still {response.status_code} {response.text[:500]}"
            time.sleep(2)


def read_lines(stream: Any, lines: queue.Queue[str]) -> None:
    for line in stream:
        lines.put(line)


@pytest.fixture(scope="module")
def airflow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Airflow]:
    base = tmp_path_factory.mktemp("airflow-server")
    gitops = bootstrapped(base, str(base / "models"))
    port = free_port()
    launcher = subprocess.Popen(
        [sys.executable, "-m", "scripts.airflow_local", "--home", str(base / "home"), "serve", "--port", str(port),
         "--parallelism", "2"],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT), **pipeline_env(base, IMAGESEARCH_SEARCH_PAGE_URL=SEARCH_PAGE)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=read_lines, args=(launcher.stdout, lines), daemon=True).start()
    output: list[str] = []
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not (login := re.search(rf"login: {USER} / (\S+)", "".join(output))):
            assert launcher.poll() is None and time.monotonic() < deadline, "".join(output)
            with contextlib.suppress(queue.Empty):
                output.append(lines.get(timeout=1))
        url = f"http://127.0.0.1:{port}"
        assert f"Airflow is up: {url}/dags/{DAG_ID}" in "".join(output)
        token = httpx.post(f"{url}/auth/token", json={"username": USER, "password": login[1]}, timeout=30).json()["access_token"]
        with httpx.Client(base_url=f"{url}/api/v2", headers={"Authorization": f"Bearer {token}"}, timeout=30) as client:
            yield Airflow(launcher, client, base / "home", base / "models", gitops)
    finally:
        tree = _tree(launcher.pid)
        launcher.send_signal(signal.SIGINT)  # Ctrl-C
        assert launcher.wait(timeout=90) == 0
        assert not [p for p in tree if p.is_running() and p.status() != psutil.STATUS_ZOMBIE], "Airflow left processes behind"


def _tree(pid: int) -> list[psutil.Process]:
    try:
        parent = psutil.Process(pid)
        return [parent, *parent.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def test_the_dag_is_served_with_its_docs_and_params(airflow: Airflow) -> None:
    dag = airflow.wait_for(f"/dags/{DAG_ID}/details", lambda body: True, 120, "the DAG never appeared")
    assert dag["doc_md"].lstrip().startswith("# image_index") and dag["max_active_runs"] == 1
    assert dag["owners"] == ["search-platform"] and "imagesearch" in {tag["name"] for tag in dag["tags"]}
    assert dag["is_paused"] is True  # make airflow starts with the hourly schedule paused
    assert {"catalog_uri", "limit", "publish", "deploy", "min_recall_at_10"} <= set(dag["params"])
    assert airflow.client.get("/importErrors").json()["total_entries"] == 0


def listening(process: psutil.Process) -> set[tuple[str, int]]:
    with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
        return {(c.laddr.ip, c.laddr.port) for c in process.net_connections("tcp") if c.status == psutil.CONN_LISTEN}
    return set()


def test_make_airflow_listens_only_on_loopback_at_its_own_port(airflow: Airflow) -> None:
    # Not the scheduler's log server on every interface at the fixed 8793, which a second Airflow wants too.
    airflow.wait_for(f"/dags/{DAG_ID}", lambda body: True, 120, "the DAG never appeared")
    tree = _tree(airflow.launcher.pid)
    assert any("scheduler" in " ".join(process.cmdline()) for process in tree)
    assert set().union(*map(listening, tree)) == {("127.0.0.1", airflow.client.base_url.port)}


def test_make_demo_refuses_the_database_make_airflow_is_using(airflow: Airflow, photo_catalog: Path, tmp_path: Path) -> None:
    before = airflow.client.get(f"/dags/{DAG_ID}/dagRuns").json()["total_entries"]
    refused = dags_test(airflow.home, pipeline_env(tmp_path), run_conf(photo_catalog, limit=4))
    assert refused.returncode == 1
    assert f"error: {airflow.home} is in use by make airflow (scripts.airflow_local serve), pid {airflow.launcher.pid}" \
        in refused.stderr, refused.stdout + refused.stderr
    assert "airflow dags test" not in refused.stdout  # refused before it started anything
    assert airflow.client.get(f"/dags/{DAG_ID}/dagRuns").json()["total_entries"] == before


def test_a_triggered_run_and_a_make_demo_run_at_once_both_succeed_apart(airflow: Airflow, photo_catalog: Path,
                                                                       tmp_path: Path) -> None:
    airflow.wait_for(f"/dags/{DAG_ID}", lambda body: True, 120, "the DAG never appeared")
    assert airflow.client.patch(f"/dags/{DAG_ID}", json={"is_paused": False}).status_code == 200
    runs = f"/dags/{DAG_ID}/dagRuns"

    rejected = airflow.client.post(runs, json={"logical_date": None, "conf": run_conf(photo_catalog, limit=-1)})
    assert rejected.status_code == 400 and "limit" in rejected.text  # Param schema validation

    triggered = airflow.client.post(runs, json={"logical_date": None, "conf": run_conf(photo_catalog, limit=16)})
    assert triggered.status_code == 200, triggered.text
    run_id = triggered.json()["dag_run_id"]
    # make demo's `airflow dags test` at the same time, in its own home: the scheduler never sees its run.
    demo_home = tmp_path / "demo-home"
    demo = dags_test(demo_home, pipeline_env(tmp_path), run_conf(photo_catalog, limit=8, deploy=False))
    assert demo.returncode == 0, (demo.stdout + demo.stderr)[-6000:]
    demo_states = task_states(demo_home)
    assert demo_states.pop(("deploy", -1))[0] == "skipped" and {state for state, _ in demo_states.values()} == {"success"}
    assert "Skipped: deploy is switched off for this run" in demo.stdout + demo.stderr  # the reason, in the visible log
    run = airflow.wait_for(f"{runs}/{run_id}", lambda body: body["state"] in ("success", "failed"), RUN_TIMEOUT_S,
                           "the run did not finish")
    assert [r["dag_run_id"] for r in airflow.client.get(runs).json()["dag_runs"]] == [run_id]
    tasks = airflow.client.get(f"{runs}/{run_id}/taskInstances").json()["task_instances"]
    states = {(task["task_id"], task["map_index"]): task["state"] for task in tasks}
    assert run["state"] == "success", states
    assert set(states.values()) == {"success"}
    once = [(task, -1) for task in ("snapshot", "shards", "build_index", "evaluate", "publish", "deploy", "run_note")]
    per_shard = [(task, shard) for task in ("shard.preprocess", "shard.embed") for shard in (0, 1)]  # 16 items, 10 a shard
    assert sorted(states) == sorted(once + per_shard)

    [version] = ModelRepositoryHook(str(airflow.models)).committed_versions()
    assert ModelRepositoryHook(str(airflow.models)).manifest(version).item_count == 16  # the limit param reached snapshot
    assert rendered_version(airflow.gitops, tmp_path / "clone")[0] == version
    events = airflow.client.get("/assets/events", params={"source_dag_id": DAG_ID}).json()["asset_events"]
    assert [event["extra"]["version"] for event in events] == [version]

    # The run links to its outcome: a note on the run (set through this REST API by run_note) and task links.
    version_url = (airflow.models / "indexes" / version).as_uri()
    headline = run["note"].splitlines()[0]
    assert headline.startswith(f"**Index {version}** — gate passed (recall@10 1, near-duplicate top-1 "), run["note"]
    assert f"[published]({version_url}), deployed `" in headline and "- deploy: GitOps commit" in run["note"]
    links = airflow.client.get(f"{runs}/{run_id}/taskInstances/publish/links").json()["extra_links"]
    assert links == {"Index version": version_url, "Search page": SEARCH_PAGE}
    links = airflow.client.get(f"{runs}/{run_id}/taskInstances/deploy/links").json()["extra_links"]
    assert links == {"GitOps commit": None, "Search page": SEARCH_PAGE}  # no IMAGESEARCH_GITOPS_COMMIT_URL_TEMPLATE
