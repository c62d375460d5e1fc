"""The demo's report against a real server: the served index and its metrics, and a sample near-duplicate query;
and ``make demo``'s last part as a command: the version git names is served and left running (``--no-wait``),
and a second demo finds it serving and rolls nothing."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from imagesearch.embedder import Embedder
from localdev import demo
from serving.app import create_app
from tests.conftest import ROOT
from tests.serving.conftest import serve_in_thread, serving_settings
from tests.serving.support import cli


def test_the_report_shows_the_index_and_a_sample_query(index_a: Path, embedder: Embedder,
                                                        monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    with serve_in_thread(create_app(serving_settings(index_a), embedder)) as url:
        info = demo.show_index(url)
        demo.show_sample_query(url)  # the demo catalog's sample item is not in the test index
        monkeypatch.setattr(demo, "SAMPLE_ITEM", "chelsea")
        demo.show_sample_query(url)
    out = capsys.readouterr().out
    assert info["version"] == "20260101T000000Z" and "Serving index 20260101T000000Z: 20 items" in out
    assert "recall_at_10" in out and "is not in this index; skipping the sample query" in out
    ranked = [line.split()[2] for line in out.splitlines() if line.startswith("  1. ")]
    assert ranked and ranked[0] in ("chelsea", "chelsea-mirror")  # the re-photographed cat finds the cat


def run_demo(environment: dict[str, str], state_dir: Path) -> str:
    result = subprocess.run([sys.executable, "-m", "localdev.demo", "--state-dir", str(state_dir), "--no-wait"],
                            cwd=ROOT, env={**environment, "IMAGESEARCH_PORT": "0"}, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    return result.stdout


def test_the_demo_serves_the_version_git_names(
        tmp_path: Path, models: Path, published_repository: tuple[Path, str], environment: dict[str, str]) -> None:
    version = published_repository[1]
    cli(environment, "tasks.operations.rollback", "init")
    cli(environment, "tasks.steps.commit_version", "--workspace", str(models / "runs" / version))

    shown = run_demo(environment, tmp_path / "serving")
    assert f"Local deploy: started version {version}" in shown
    assert f"Serving index {version}: 20 items" in shown and "recall_at_10" in shown
    url = re.search(r"Web page: (http://127\.0\.0\.1:\d+)/", shown).group(1)  # type: ignore[union-attr]
    assert httpx.get(f"{url}/v1/index", timeout=30).json()["version"] == version
    assert "python -m localdev.argocd --stop" in shown  # left running, and how to stop it

    again = run_demo(environment, tmp_path / "serving")
    assert f"Local deploy: unchanged version {version} ({url})" in again
