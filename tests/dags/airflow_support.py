"""Airflow in tests: an isolated AIRFLOW_HOME, the DAG under chosen settings, templates rendered offline."""

from __future__ import annotations

import atexit
import copy
import csv
import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from imagesearch.settings import get_settings
from scripts.airflow_local import PLUGINS_FOLDER
from tests.conftest import ROOT

DAG_ID = "image_index"
VERSION_PATTERN = r"^\d{8}T\d{6}Z-[0-9a-f]{8}$"
RUN_AFTER = datetime(2026, 11, 27, 5, 0, tzinfo=UTC)
RUN_ID = "scheduled__2026-11-27T05:00:00+00:00"
RUN_VERSION = "20261127T050000Z-" + hashlib.sha256(RUN_ID.encode()).hexdigest()[:8]


def isolate_airflow() -> Path:
    """Point this process's Airflow at a throwaway home and this repo's dags/ and plugins/ (before importing airflow)."""
    if home := os.environ.get("_IMAGESEARCH_TEST_AIRFLOW_HOME"):
        return Path(home)
    home = Path(tempfile.mkdtemp(prefix="airflow-home-"))
    atexit.register(shutil.rmtree, home, ignore_errors=True)
    os.environ.update({
        "_IMAGESEARCH_TEST_AIRFLOW_HOME": str(home),
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(PLUGINS_FOLDER),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
    })
    return home


def load_dag(dag_id: str = DAG_ID, **env: str) -> Any:
    """The image_index DAG (or ``dag_id``) parsed the way the dag-processor parses it, with ``IMAGESEARCH_*`` from ``env``."""
    from airflow.dag_processing.dagbag import DagBag

    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    get_settings.cache_clear()  # the dag-processor parses in a process of its own
    try:
        bag = DagBag(dag_folder=str(ROOT / "dags"))
    finally:
        get_settings.cache_clear()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    assert bag.import_errors == {}, bag.import_errors
    return bag.dags[dag_id]


def render(dag: Any, task_id: str, *, shard: int | None = None, run_id: str = RUN_ID, run_after: datetime = RUN_AFTER,
           **params: Any) -> Any:
    """A task with its templates rendered for the run ``run_id`` after ``run_after`` (a per-shard task for ``shard``)."""
    task = copy.copy(dag.task_dict[task_id])  # rendering replaces the templates; keep the DAG's task as it is
    if shard is not None:
        task.shard = shard  # what the mapped task group's expansion gives each copy
    context = {"params": {**dag.params.dump(), **params}, "dag_run": SimpleNamespace(run_after=run_after, run_id=run_id)}
    task.render_template_fields(context)
    return task


def pod_spec(dag: Any, task_id: str, *, shard: int | None = None, **render_options: Any) -> dict[str, Any]:
    """The spec of the pod a step task of a ``IMAGESEARCH_RUNNER=kubernetes`` DAG starts, as the Kubernetes client
    serializes it (camelCase): ``render_options`` as :func:`render` takes them; a per-shard task on shard 0 by default."""
    if shard is None and task_id.startswith("shard."):
        shard = 0
    return serialized_pod(render(dag, task_id, shard=shard, **render_options))


def serialized_pod(task: Any) -> dict[str, Any]:
    """The pod spec a rendered step pod task starts (camelCase, as the Kubernetes client sends it)."""
    from kubernetes.client import ApiClient

    return ApiClient().sanitize_for_serialization(task.build_pod_request_obj(dry_run=True))["spec"]


def pipeline_env(base: Path, **extra: str) -> dict[str, str]:
    """Settings for a quick, isolated local run: model repository ``base/models``, GitOps repo ``base/gitops.git``,
    2 shards of the photo catalog, short retries, no schedule."""
    return {"IMAGESEARCH_RUNNER": "local", "IMAGESEARCH_MODEL_REPOSITORY": str(base / "models"),
            "IMAGESEARCH_GITOPS_REPO_URL": str(base / "gitops.git"), "IMAGESEARCH_SHARD_SIZE": "10",
            "IMAGESEARCH_SCHEDULE": "none", "IMAGESEARCH_TASK_RETRIES": "2", "IMAGESEARCH_RETRY_DELAY_S": "1",
            "IMAGESEARCH_MAX_RETRY_DELAY_S": "2", "IMAGESEARCH_MAX_FAILURE_RATIO": "0.2", **extra}


def run_conf(catalog: Path, **params: Any) -> dict[str, Any]:
    """A trigger's params for the photo catalog, whose mirrored twins may rank first: top-1 gate at 0.5."""
    return {"catalog_uri": str(catalog), "min_near_duplicate_top1": 0.5, **params}


def dags_test_argv(home: Path, conf: Mapping[str, Any], dag_id: str = DAG_ID) -> list[str]:
    """``airflow dags test image_index`` (or ``dag_id``) through the repo's launcher (what ``make demo`` runs)."""
    return [sys.executable, "-m", "scripts.airflow_local", "--home", str(home), "dags-test", "--conf", json.dumps(conf),
            "--dag", dag_id]


def dags_test(home: Path, env: Mapping[str, str], conf: Mapping[str, Any],
              dag_id: str = DAG_ID) -> subprocess.CompletedProcess[str]:
    """One run of :func:`dags_test_argv`, to its end."""
    return subprocess.run(dags_test_argv(home, conf, dag_id), cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT), **env},
                          capture_output=True, text=True, timeout=900)


def task_states(home: Path, dag_id: str = DAG_ID) -> dict[tuple[str, int], tuple[str, int]]:
    """(task_id, map_index) -> (state, try_number) of the last run of ``dag_id`` in a local Airflow's metadata DB."""
    with sqlite3.connect(home / "airflow.db") as db:
        run_id = db.execute("SELECT run_id FROM dag_run WHERE dag_id = ? ORDER BY id DESC LIMIT 1", (dag_id,)).fetchone()[0]
        rows = db.execute("SELECT task_id, map_index, state, try_number FROM task_instance WHERE dag_id = ? AND run_id = ?",
                          (dag_id, run_id))
        return {(task, index): (state, tries) for task, index, state, tries in rows}


def last_run_state(home: Path) -> str:
    with sqlite3.connect(home / "airflow.db") as db:
        return db.execute("SELECT state FROM dag_run WHERE dag_id = ? ORDER BY id DESC LIMIT 1", (DAG_ID,)).fetchone()[0]


def xcoms(home: Path, task_id: str, map_index: int = -1) -> dict[str, Any]:
    """key -> value of a task's XComs in the last run (its return value, its ``_link_*`` extra links)."""
    with sqlite3.connect(home / "airflow.db") as db:
        run_id = db.execute("SELECT run_id FROM dag_run WHERE dag_id = ? ORDER BY id DESC LIMIT 1", (DAG_ID,)).fetchone()[0]
        rows = db.execute("SELECT key, value FROM xcom WHERE dag_id = ? AND run_id = ? AND task_id = ? AND map_index = ?",
                          (DAG_ID, run_id, task_id, map_index))
        return {key: json.loads(value) for key, value in rows}


def write_corrupt_catalog(source: Path, target: Path, broken: int = 15) -> Path:
    """``source`` with the image URI of its first ``broken`` rows blanked: over the rejected-rows limit."""
    rows = list(csv.DictReader(source.open(newline="")))
    for row in rows[:broken]:
        row["image_uri"] = ""
    with target.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return target
