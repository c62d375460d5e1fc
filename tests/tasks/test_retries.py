"""Retries by meaning: every step exits 1 (Airflow tries it again) on a transient error and 2 (the task fails at once)
on a permanent one, whatever the step; the catalog's store failing is transient, a catalog that is not there is not."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from imagesearch.gcs import gcs_client
from imagesearch.settings import Settings
from tasks.cli import EXIT_PERMANENT, EXIT_RETRYABLE
from tasks.pipeline import REPOSITORY, SERVING_OVERLAY, STEP, STEPS, VERSION, Step, default_params
from tests.flaky_server import flaky_server
from tests.tasks.conftest import StepResult, run_module


@pytest.fixture(autouse=True)
def no_gitops_repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMAGESEARCH_GITOPS_REPO_URL", str(tmp_path / "absent-gitops.git"))


@pytest.fixture
def unavailable_gcs(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """gs:// served by a store that answers 503 to everything; the client gives up after 0.5 s of retries."""
    with flaky_server() as url:
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", url)
        monkeypatch.setenv("IMAGESEARCH_REPOSITORY_RETRY_S", "0.5")
        gcs_client.cache_clear()
        yield url
    gcs_client.cache_clear()


def run(step: Step, workspace: str, catalog: str, repository: Path) -> StepResult:
    """The step with its declared argv (as the DAG and run_all build it), run in this process."""
    inputs = {**default_params(Settings.from_env(), {"catalog_uri": catalog}), REPOSITORY: str(repository),
              VERSION: "20260201T000000Z", SERVING_OVERLAY: ""}
    argv = step.argv(workspace, step.options(inputs), step.flags(inputs), 0 if step.sharded else None)
    return run_module(argv[2], argv[3:])


@pytest.mark.parametrize("step", STEPS, ids=lambda step: step.name)
def test_a_store_answering_503_is_transient(step: Step, unavailable_gcs: str, photo_catalog: Path, tmp_path: Path) -> None:
    result = run(step, "gs://models/runs/20260201T000000Z", str(photo_catalog), tmp_path / "models")
    assert result.code == EXIT_RETRYABLE, result.stderr[-2000:]
    assert "RepositoryUnavailableError is transient: a retry may help" in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith(f"{step.program} failed: "
                                                              "model repository unreachable or failing")


@pytest.mark.parametrize("step", STEPS, ids=lambda step: step.name)
def test_a_bad_uri_is_permanent(step: Step, photo_catalog: Path, tmp_path: Path) -> None:
    result = run(step, "ftp://models.example.com/runs/20260201T000000Z", str(photo_catalog), tmp_path / "models")
    assert result.code == EXIT_PERMANENT, result.stderr[-2000:]
    assert "is permanent: no retry" in result.stderr
    assert "unsupported model repository URI 'ftp://models.example.com/runs/20260201T000000Z'" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(("path", "code", "says"), [
    ("/unavailable/catalog.csv", EXIT_RETRYABLE, "HTTP 503"),
    ("/slow/catalog.csv", EXIT_RETRYABLE, "under the 16,384 bytes/s minimum"),  # a read that times out
    ("/missing/catalog.csv", EXIT_PERMANENT, "HTTP 404"),
])
def test_a_catalog_read_is_retried_only_when_its_store_failed(path: str, code: int, says: str, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    with flaky_server() as url:
        monkeypatch.setenv("IMAGESEARCH_CATALOG_PREFIXES", f"{url}/")
        monkeypatch.setenv("IMAGESEARCH_FETCH_ALLOWED_NETWORKS", "127.0.0.1/32")  # this test's server only
        result = run(STEP["snapshot"], str(tmp_path / "runs" / "v"), f"{url}{path}", tmp_path / "models")
    assert result.code == code, result.stderr[-2000:]
    assert f"snapshot failed: cannot read catalog {url}{path}" in result.stderr and says in result.stderr
