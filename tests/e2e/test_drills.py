"""Failure drills: each breaks one part for real and checks that nothing is lost or served wrong."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from imagesearch import gitops
from imagesearch.artifacts import committed_versions, version_key
from imagesearch.repository import open_repository
from tests.conftest import ROOT, SECOND_VERSION, free_port, run_pipeline, wait_for_port
from tests.gitops.support import clone, git_output, rendered_version
from tests.serving.support import cli
from tests.tasks.conftest import run_step

pytestmark = pytest.mark.slow
V2, V3 = SECOND_VERSION, "20260103T000000Z"


@pytest.fixture
def models(two_versions: Path) -> Path:
    return two_versions


@pytest.fixture
def env(tmp_path: Path, models: Path) -> Iterator[dict[str, str]]:
    environment = {**os.environ, "PYTHONPATH": str(ROOT), "IMAGESEARCH_GITOPS_REPO_URL": str(tmp_path / "gitops.git"),
                   "IMAGESEARCH_MODEL_REPOSITORY": str(models), "IMAGESEARCH_GITOPS_PUSH_RETRIES": "2"}
    cli(environment, "tasks.operations.rollback", "init")
    yield environment
    cli(environment, "localdev.argocd", "--state-dir", str(tmp_path / "serving"), "--stop")


def serve(env: dict[str, str], tmp_path: Path, workspace: Path) -> tuple[str, str]:
    """Deploy the workspace's version through git and the local deploy; (url, version)."""
    cli(env, "tasks.steps.commit_version", "--workspace", str(workspace))
    started = json.loads(cli(env, "localdev.argocd", "--state-dir", str(tmp_path / "serving"), "--port", "0"))
    return str(started["url"]), str(started["version"])


def sync(env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "localdev.argocd", "--state-dir", str(tmp_path / "serving")],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def served_version(url: str) -> str:
    return httpx.get(f"{url}/v1/index", timeout=30).json()["version"]


def test_publish_killed_mid_upload_leaves_nothing_visible(
    tmp_path: Path, models: Path, photo_catalog: Path, published_repository: tuple[Path, str], env: dict[str, str]
) -> None:
    v1 = published_repository[1]
    url, _ = serve(env, tmp_path, models / "runs" / v1)
    version, workspace = "20260104T000000Z", tmp_path / "run"
    # A full rebuild: the same catalog as the served version would otherwise be a nothing-changed run with no shard.
    assert run_step("snapshot", workspace, "--catalog", str(photo_catalog), "--repository", str(models),
                    "--version", version, "--full-rebuild").code == 0
    for step in ("preprocess", "embed"):
        assert run_step(step, workspace, "--shard", "0").code == 0
    for step in ("build_index", "evaluate"):
        assert run_step(step, workspace, *(["--min-near-duplicate-top1", "0.5"] if step == "evaluate" else [])).code == 0
    # A big artifact, so the upload takes a while; of a name a version may hold (the brute-force index has no partitioner).
    with (workspace / "index" / "scann" / "serialized_partitioner.pb").open("wb") as ballast:
        ballast.truncate(400 * 1024 * 1024)

    argv = [sys.executable, "-m", "tasks.steps.publish", "--workspace", str(workspace), "--repository", str(models)]
    scratch = tmp_path / "tmp"  # the killed publish cannot remove its scratch copy: keep it in pytest's folders
    scratch.mkdir()
    publish = subprocess.Popen(argv, cwd=ROOT, env={**env, "TMPDIR": str(scratch)}, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
    target = models / "indexes" / version
    deadline = time.monotonic() + 120
    while not target.exists() and time.monotonic() < deadline and publish.poll() is None:
        time.sleep(0.005)
    publish.send_signal(signal.SIGKILL)
    publish.wait()
    assert target.exists() and not (target / "_COMMIT").exists()
    assert version not in committed_versions(open_repository(str(models)))
    refused = subprocess.run([sys.executable, "-m", "tasks.steps.commit_version", "--workspace", str(workspace)], cwd=ROOT,
                             env=env,
                             capture_output=True, text=True)
    assert refused.returncode != 0 and "not committed" in refused.stderr
    assert served_version(url) == v1

    again = run_step("publish", workspace, "--repository", str(models))
    assert again.code == 0 and again.summary["uploaded"] is True
    assert version in committed_versions(open_repository(str(models)))
    shutil.rmtree(target)  # leave the module's repository as it was


def test_unreachable_model_repository_fails_clearly_after_bounded_retries(tmp_path: Path, photo_catalog: Path) -> None:
    port = free_port()
    emulator = subprocess.Popen([Path(sys.executable).parent / "gcp-storage-emulator", "start", "--host=127.0.0.1",
                                 f"--port={port}", "--in-memory"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for_port(port)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "STORAGE_EMULATOR_HOST": f"http://127.0.0.1:{port}",
           "IMAGESEARCH_REPOSITORY_RETRY_S": "3"}
    subprocess.run([sys.executable, "-c", "from imagesearch.gcs import gcs_client; gcs_client().create_bucket('models')"],
                   cwd=ROOT, env=env, check=True)
    emulator.terminate()
    emulator.wait()
    began = time.monotonic()
    result = run_pipeline(photo_catalog, "gs://models/prod", "--version", V3, env=env)
    assert result.returncode != 0
    assert "model repository unreachable or failing" in result.stderr and "gs://models/prod" in result.stderr
    assert "Traceback" not in result.stderr
    assert time.monotonic() - began < 120  # bounded: a few seconds of retries per call, not forever


def test_gitops_remote_rejecting_pushes_fails_clearly_and_a_rerun_deploys(
    tmp_path: Path, models: Path, published_repository: tuple[Path, str], env: dict[str, str]
) -> None:
    v1 = published_repository[1]
    cli(env, "tasks.steps.commit_version", "--workspace", str(models / "runs" / v1))
    hook = tmp_path / "gitops.git" / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'pushes are frozen' >&2\nexit 1\n")
    hook.chmod(0o755)
    rejected = subprocess.run([sys.executable, "-m", "tasks.steps.commit_version", "--workspace", str(models / "runs" / V2)],
                              cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert rejected.returncode == 1  # retryable: Airflow tries the task again
    assert "commit_version failed: git push to" in rejected.stderr and "pushes are frozen" in rejected.stderr
    config = gitops.GitOpsConfig(url=env["IMAGESEARCH_GITOPS_REPO_URL"])
    assert rendered_version(config, tmp_path / "clone")[0] == v1  # published, not deployed
    assert V2 in committed_versions(open_repository(str(models)))

    unreachable = subprocess.run([sys.executable, "-m", "tasks.steps.commit_version", "--workspace", str(models / "runs" / V2)],
                                 cwd=ROOT,
                                 env={**env, "IMAGESEARCH_GITOPS_REPO_URL": str(tmp_path / "missing.git")},
                                 capture_output=True, text=True, timeout=300)
    assert unreachable.returncode == 1 and "commit_version failed:" in unreachable.stderr
    assert "Traceback" not in unreachable.stderr

    hook.unlink()
    cli(env, "tasks.steps.commit_version", "--workspace", str(models / "runs" / V2))
    assert rendered_version(config, tmp_path / "clone2")[0] == V2


def point_overlay_at(config: gitops.GitOpsConfig, checkout_dir: Path, version: str) -> None:
    """A hand-made commit naming ``version`` (as a careless person might push), bypassing the bump's checks."""
    checkout = clone(config, checkout_dir)
    gitops.Overlay(checkout).set_version(version)
    checkout.commit(f"Deploy index {version} by hand")
    assert checkout.push()


def test_bad_version_in_git_is_refused_and_the_server_keeps_serving(
    tmp_path: Path, models: Path, published_repository: tuple[Path, str], env: dict[str, str]
) -> None:
    v1 = published_repository[1]
    url, _ = serve(env, tmp_path, models / "runs" / v1)
    config = gitops.GitOpsConfig(url=env["IMAGESEARCH_GITOPS_REPO_URL"])

    point_overlay_at(config, tmp_path / "hand", "20260109T000000Z")  # never published
    missing = sync(env, tmp_path)
    assert missing.returncode == 1 and "not committed" in missing.stderr
    assert served_version(url) == v1

    data = models / version_key(V2, "items.parquet")
    original = data.read_bytes()
    data.write_bytes(original[:-1] + bytes([original[-1] ^ 1]))  # bit rot in the bucket
    try:
        point_overlay_at(config, tmp_path / "hand", V2)
        broken = sync(env, tmp_path)
    finally:
        data.write_bytes(original)
    assert broken.returncode == 1 and "checksum mismatch" in broken.stderr
    assert served_version(url) == v1
    assert sorted(p.name for p in (tmp_path / "serving" / "versions").iterdir()) == [v1]  # nothing half-filled


def test_racing_bumps_keep_history_linear_and_never_regress(
    tmp_path: Path, models: Path, published_repository: tuple[Path, str], env: dict[str, str]
) -> None:
    v1 = published_repository[1]
    cli(env, "tasks.steps.commit_version", "--workspace", str(models / "runs" / v1))
    newer = tmp_path / "run-v3"
    shutil.copytree(models / "runs" / V2, newer)
    shutil.copytree(models / "indexes" / V2, models / "indexes" / V3)  # same artifacts, published as v3 too
    run = json.loads((newer / "snapshot" / "run.json").read_text())
    (newer / "snapshot" / "run.json").write_text(json.dumps({**run, "version": V3}))
    racers = [subprocess.Popen([sys.executable, "-m", "tasks.steps.commit_version", "--workspace", str(workspace)], cwd=ROOT,
                               env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
              for workspace in (models / "runs" / V2, newer)]
    outcomes = [racer.communicate(timeout=300) for racer in racers]
    assert [racer.returncode for racer in racers] == [0, 0], outcomes
    config = gitops.GitOpsConfig(url=env["IMAGESEARCH_GITOPS_REPO_URL"])
    checkout = clone(config, tmp_path / "clone")
    assert rendered_version(config, tmp_path / "clone2")[0] == V3  # the newest wins, whoever pushed last
    assert git_output(checkout.path, "log", "--merges", "--oneline") == ""  # linear history
    deployed = [release.version for release in reversed(gitops.history(gitops.Overlay(checkout))) if release.version]
    assert deployed in ([v1, V2, V3], [v1, V3])  # in order; a v2 that lost the race to v3 is not applied after it
    shutil.rmtree(models / "indexes" / V3)
