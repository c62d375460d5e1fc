"""The run's note: version, metrics, verdict and links in the REST API's limit, or the reason it failed."""

from __future__ import annotations

import json
from pathlib import Path

from imagesearch.settings import Settings
from plugins.run_note import NOTE_MAX_CHARS, compose_note, gate_verdict, set_run_note

VERSION = "20261127T050000Z"


METRICS = {"recall_at_10": 0.987, "near_duplicate_top1": 0.95}


TEMPLATE = "https://github.com/acme/gitops/commit/{commit}"


def test_the_note_of_a_deployed_run_names_version_metrics_verdict_and_links() -> None:
    settings = Settings.from_env({"IMAGESEARCH_GITOPS_COMMIT_URL_TEMPLATE": TEMPLATE, "IMAGESEARCH_SEARCH_PAGE_URL": "https://search.example.com/"})
    publish = {"version": VERSION, "repository": "gs://models/imagesearch", "items": 20, "files": 5}
    deploy = {"version": VERSION, "commit": "0123456789abcdef", "overlay": "gitops/overlays/staging"}
    note = compose_note(VERSION, {"publish": "success", "deploy": "success"}, METRICS, "passed", publish, deploy, settings)
    console = f"https://console.cloud.google.com/storage/browser/models/imagesearch/indexes/{VERSION}/"
    commit_page = TEMPLATE.format(commit="0123456789abcdef")
    assert note.splitlines() == [
        f"**Index {VERSION}** — gate passed (recall@10 0.987, near-duplicate top-1 0.95) — [published]({console}), "
        f"deployed [0123456789ab]({commit_page})",
        "- metrics: near_duplicate_top1 0.95, recall_at_10 0.987",
        f"- publish: 20 items, 5 files in {console}",
        "- deploy: GitOps commit `0123456789abcdef` on gitops/overlays/staging",
        "- [search page](https://search.example.com/)",
    ]


def test_the_note_of_a_failed_gate_says_why_and_links_nowhere(tmp_path: Path) -> None:
    workspace = tmp_path / "runs" / VERSION
    (workspace / "evaluate").mkdir(parents=True)
    (workspace / "evaluate" / "metrics.json").write_text(json.dumps(METRICS))
    (workspace / "evaluate" / "gate.json").write_text(json.dumps({"passed": False, "failures": ["recall@10 0.800 < 0.9"]}))
    metrics, verdict = gate_verdict(str(workspace))
    assert metrics == METRICS and verdict == "failed: recall@10 0.800 < 0.9"
    note = compose_note(VERSION, {"publish": "upstream_failed", "deploy": "upstream_failed"}, metrics, verdict, None, None,
                        Settings.from_env({}))
    assert note.splitlines()[0] == (f"**Index {VERSION}** — gate failed: recall@10 0.800 < 0.9 (recall@10 0.987, "
                                    "near-duplicate top-1 0.95) — publish upstream_failed, deploy upstream_failed")
    assert "](" not in note  # no links
    assert gate_verdict(str(tmp_path / "runs" / "other")) == ({}, "not reached")


def test_a_note_fits_the_rest_apis_limit() -> None:
    metrics = {f"metric_{i}": 0.5 for i in range(200)}
    assert len(compose_note(VERSION, {}, metrics, "passed", None, None, Settings.from_env({}))) == NOTE_MAX_CHARS


def test_without_an_api_the_note_is_only_logged() -> None:
    assert set_run_note(Settings.from_env({}), "image_index", "manual__1", "note") is False
