"""SIGTERM to ``python -m serving.app`` while requests are queued: every one of them still gets its answer."""

from __future__ import annotations

import re
import shutil
import signal
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from tests.serving.conftest import start_server
from tests.serving.hostile_inputs import HttpRequest, huge_small_png, send

pytestmark = pytest.mark.slow
QUERIES = 12


def admitted(url: str) -> int:
    text = httpx.get(f"{url}/metrics", timeout=10).text
    match = re.search(r"^imagesearch_admitted_requests (\S+)$", text, re.MULTILINE)
    assert match, text
    return int(float(match.group(1)))


def test_every_queued_request_is_answered_after_sigterm(index_a: Path, tmp_path: Path) -> None:
    shutil.copytree(index_a, tmp_path / "index")
    # One decode at a time and no batching: the queries queue up behind each other (each ~9 Mpx to decode).
    env = {"IMAGESEARCH_QUERY_MEMORY_BUDGET_MB": "1", "IMAGESEARCH_BATCH_MAX_SIZE": "1"}
    server = start_server(tmp_path / "index", tmp_path / "server.log", env=env)
    host, port = urlsplit(server.url).hostname or "", urlsplit(server.url).port or 0
    image = huge_small_png(3000)
    statuses: list[int | str] = []

    def query() -> None:
        try:
            answer = send(host, port, HttpRequest(path="/v1/search?k=1", headers={"Content-Type": "image/png"}, body=image))
            statuses.append(answer.status)
        except OSError as exc:
            statuses.append(repr(exc))

    threads = [threading.Thread(target=query, daemon=True) for _ in range(QUERIES)]
    try:
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 60
        while (waiting := admitted(server.url)) + len(statuses) < QUERIES:  # every query is in the server or answered
            assert time.monotonic() < deadline, (waiting, statuses)
            time.sleep(0.02)
        server.process.send_signal(signal.SIGTERM)
        answered_before = len(statuses)
        for thread in threads:
            thread.join(timeout=120)
        assert server.process.wait(timeout=60) in (0, -signal.SIGTERM)
    finally:
        server.stop()
    assert answered_before <= QUERIES - 4, "too few queries were still queued at SIGTERM for the test to mean anything"
    assert statuses == [200] * QUERIES, statuses
    assert "Application shutdown complete" in server.log.read_text()
