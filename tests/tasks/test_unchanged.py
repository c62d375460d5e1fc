"""An hour with nothing to do: each later step reports it and does nothing; otherwise it runs."""

from __future__ import annotations

import logging

import pytest

from tasks import unchanged

INFO = {"nothing_changed": True, "snapshot_sha256": "a" * 64, "model_id": "efficientnet-lite0-0123456789ab",
        "serving_version": "20260101T000000Z"}


def test_a_nothing_changed_run_says_so(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="publish"):
        summary = unchanged.summary(INFO, "publish")
    assert summary == {"nothing_changed": True, "serving_version": "20260101T000000Z", "message": unchanged.message(INFO)}
    assert ("catalog snapshot aaaaaaaaaaaa, model efficientnet and a learned projection are those"
            in summary["message"])
    assert "served version 20260101T000000Z" in caplog.text
    head = {"kind": "linear-head", "in_dim": 1280, "out_dim": 256, "projection_id": "linear-head-" + "b" * 32}
    assert f"and projection linear-head-{'b' * 32} are those" in unchanged.message({**INFO, "projection": head})


def test_a_run_with_work_gets_no_summary() -> None:
    assert unchanged.summary({**INFO, "nothing_changed": False}, "publish") is None
    assert unchanged.summary({}, "publish") is None
