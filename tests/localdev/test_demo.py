"""The demo's report against a real server: the served index and its metrics, and a sample near-duplicate query."""

from __future__ import annotations

from pathlib import Path

import pytest

from imagesearch.embedder import Embedder
from localdev import demo
from serving.app import create_app
from tests.serving.conftest import serve_in_thread, serving_settings


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
