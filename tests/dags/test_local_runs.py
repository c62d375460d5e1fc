"""Local mode end to end: ``airflow dags test image_index`` on the small real photo catalog."""

from __future__ import annotations

import re
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from plugins.hooks.model_repository import ModelRepositoryHook
from tests.conftest import catalog_items
from tests.dags.airflow_support import (
    VERSION_PATTERN,
    dags_test,
    last_run_state,
    pipeline_env,
    run_conf,
    task_states,
    write_corrupt_catalog,
    xcoms,
)
from tests.dags.smtp_support import smtp_inbox
from tests.gitops.support import bootstrapped, rendered_version

pytestmark = pytest.mark.slow
STEPS = ("snapshot", "shards", "shard.preprocess", "shard.embed", "build_index", "evaluate", "publish", "deploy", "run_note")
COMMIT_URL = "https://git.example.com/gitops/commit/{commit}"


@pytest.fixture(scope="module")
def airflow_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One AIRFLOW_HOME (SQLite) for this module's runs; ``dags-test`` creates or migrates its DB."""
    return tmp_path_factory.mktemp("airflow-home")


def test_a_corrupt_catalog_fails_at_snapshot_publishes_nothing_and_emails_an_alert(airflow_home: Path, photo_catalog: Path,
                                                                                    tmp_path: Path) -> None:
    corrupt = write_corrupt_catalog(photo_catalog, tmp_path / "catalog.csv")
    models = tmp_path / "models"
    with smtp_inbox() as inbox:
        env = pipeline_env(tmp_path, IMAGESEARCH_TASK_RETRIES="1", IMAGESEARCH_ALERT_SMTP_URL=inbox.url,
                           IMAGESEARCH_ALERT_EMAIL_TO="search-oncall@example.com, pm@example.com")
        result = dags_test(airflow_home, env, run_conf(corrupt, deploy=False))
    assert result.returncode != 0
    log = result.stdout + result.stderr
    assert re.search(rf"snapshot failed: catalog {re.escape(str(corrupt))}: 15 of 20 rows are invalid", log), log[-5000:]
    states = task_states(airflow_home)
    assert states[("snapshot", -1)] == ("failed", 1)  # a corrupt catalog is not retried: exit code 2
    assert states.pop(("run_note", -1)) == ("success", 1)  # the teardown still writes the run's summary...
    assert {state for (task, _), (state, _) in states.items() if task != "snapshot"} == {"upstream_failed"}
    assert last_run_state(airflow_home) == "failed"  # ...and the run stays failed
    assert "— gate not reached — publish upstream_failed, deploy upstream_failed" in log
    assert ModelRepositoryHook(str(models)).committed_versions() == []

    [alert] = inbox.messages  # one failed task, one message; upstream_failed tasks never ran
    assert alert["Subject"].startswith("[image_index] snapshot failed in run manual__")
    assert alert["X-Envelope-To"] == "search-oncall@example.com, pm@example.com"
    body = alert.get_content()
    assert "15 of 20 rows are invalid" in body and "/dags/image_index/runs/manual__" in body


@pytest.fixture
def hidden_shard(photo_catalog: Path, tmp_path: Path) -> Iterator[tuple[Path, list[Path]]]:
    """A copy of the photo catalog whose second shard's images are missing until put back."""
    folder = tmp_path / "catalog"
    shutil.copytree(photo_catalog.parent, folder)
    catalog = folder / photo_catalog.name
    second = sorted(catalog_items(catalog), key=lambda item: item.item_id)[10:]
    images = [Path(item.image_uri) for item in second]
    for image in images:
        image.rename(image.with_suffix(".hidden"))
    yield catalog, images
    restore(images)


def restore(images: list[Path]) -> None:
    for image in images:
        if image.with_suffix(".hidden").exists():
            image.with_suffix(".hidden").rename(image)


def test_a_run_retries_a_failed_shard_then_publishes_a_committed_index_and_deploys_it(
    airflow_home: Path, hidden_shard: tuple[Path, list[Path]], tmp_path: Path
) -> None:
    catalog, images = hidden_shard
    models = tmp_path / "models"
    gitops = bootstrapped(tmp_path, str(models))
    done = threading.Event()

    def put_back_after_the_first_failure() -> None:
        # preprocess records a shard's failures before it fails; the images are back before its retry.
        while not done.wait(0.1):
            if any(path.stat().st_size for path in models.glob("runs/*/preprocess/00001/failures.jsonl")):
                restore(images)
                return

    watcher = threading.Thread(target=put_back_after_the_first_failure, daemon=True)
    watcher.start()
    try:
        env = pipeline_env(tmp_path, IMAGESEARCH_GITOPS_COMMIT_URL_TEMPLATE=COMMIT_URL)
        result = dags_test(airflow_home, env, run_conf(catalog))
    finally:
        done.set()
        watcher.join()
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-6000:]

    assert "preprocess failed: shard 1: 10 of 10 images failed" in log  # the first try of shard 1
    states = task_states(airflow_home)
    assert {task for task, _ in states} == set(STEPS)
    assert sorted(index for task, index in states if task == "shard.embed") == [0, 1]  # one task per shard
    assert states.pop(("shard.preprocess", 1)) == ("success", 2)  # failed once, retried, succeeded
    assert set(states.values()) == {("success", 1)}

    hook = ModelRepositoryHook(str(models))
    [version] = hook.committed_versions()
    assert re.match(VERSION_PATTERN, version)
    manifest = hook.manifest(version)
    assert manifest.item_count == 20 and manifest.metrics["recall_at_10"] == 1.0
    assert rendered_version(gitops, tmp_path / "clone")[0] == version  # the GitOps bump names it

    # The run explains itself: links to its outcome, a summary, each step's summary logged once, no noise.
    commit = xcoms(airflow_home, "deploy")["return_value"]["commit"]
    assert xcoms(airflow_home, "publish")["_link_ModelVersionLink"] == (models / "indexes" / version).as_uri()
    assert xcoms(airflow_home, "deploy")["_link_GitOpsCommitLink"] == COMMIT_URL.format(commit=commit)
    assert xcoms(airflow_home, "deploy")["_link_SearchPageLink"] == "http://127.0.0.1:8000/"
    note = xcoms(airflow_home, "run_note")["return_value"]
    assert note.startswith(f"**Index {version}** — gate passed (recall@10 1, near-duplicate top-1 ")
    published = f"[published]({(models / 'indexes' / version).as_uri()})"
    assert f"{published}, deployed [{commit[:12]}]({COMMIT_URL.format(commit=commit)})" in note.splitlines()[0]
    assert log.count('"step": "publish"') == 1 and log.count('"step": "evaluate"') == 1
    assert "GitWildMatchPattern" not in log

    # The next hour, nothing changed: zero shards are mapped, build_index still runs (and says so), nothing is
    # published or committed, and the run succeeds.
    head = rendered_version(gitops, tmp_path / "clone-2")
    again = dags_test(airflow_home, env, run_conf(catalog))
    log = again.stdout + again.stderr
    assert again.returncode == 0, log[-6000:]
    states = task_states(airflow_home)
    assert not [index for task, index in states if task == "shard.embed" and index >= 0]  # nothing mapped
    assert states[("build_index", -1)] == ("success", 1) and states[("deploy", -1)] == ("success", 1)
    assert "nothing changed: catalog snapshot" in log
    assert xcoms(airflow_home, "publish")["return_value"]["nothing_changed"] is True
    assert xcoms(airflow_home, "deploy")["return_value"]["changed"] is False
    assert xcoms(airflow_home, "run_note")["return_value"].startswith(f"**Nothing changed** — still serving {version}")
    assert hook.committed_versions() == [version]
    assert rendered_version(gitops, tmp_path / "clone-3") == head
