"""A real Prometheus (Debian's, unpacked into the venv by `make setup`) scrapes a live search server under a short,
bounded load with the shipped alert rules loaded; every dashboard query and every series selector of every rule must
find series, so a misspelt metric or label name fails here instead of leaving a panel or an alert silently empty."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.conftest import ROOT, jpeg_bytes, photo
from tests.serving.conftest import ServerProcess, free_port, start_server
from tests.serving.promql import selectors

pytestmark = pytest.mark.slow
MONITORING = ROOT / "gitops" / "monitoring"
RULES = MONITORING / "alerts.rules.yaml"
DASHBOARD = MONITORING / "imagesearch-dashboard.json"
# Grafana fills these in; a minute holds plenty of one-second scrapes of the load just sent.
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$__interval": "1m", "$__range": "1m"}
# Series that come from Airflow (statsd_exporter), not from the search server: nothing here can export them.
FROM_AIRFLOW = {"airflow_dagrun_duration_failed_image_index_count"}
CONCURRENT_SEARCHES = 6
MAX_ROUNDS = 10


@dataclass
class Prometheus:
    url: str
    process: subprocess.Popen[bytes]

    def query(self, expr: str) -> list[dict[str, Any]]:
        answer = httpx.get(f"{self.url}/api/v1/query", params={"query": expr}, timeout=30).json()
        assert answer["status"] == "success", (expr, answer)
        return answer["data"]["result"]


def prometheus_binary() -> str:
    found = shutil.which("prometheus", path=str(Path(sys.executable).parent)) or shutil.which("prometheus")
    if found is None:
        pytest.fail("prometheus is missing: `make setup` unpacks it from Debian's prometheus package")
    return found


@pytest.fixture()
def server(index_a: Path, tmp_path: Path) -> Iterator[ServerProcess]:
    """A search server that admits one image query at a time, so concurrent searches also meet 503 overloads."""
    index_dir = tmp_path / "index"
    shutil.copytree(index_a, index_dir)
    process = start_server(index_dir, tmp_path / "server.log", env={"IMAGESEARCH_MAX_QUEUE": "1"})
    yield process
    process.stop()


@pytest.fixture()
def prometheus(server: ServerProcess, tmp_path: Path) -> Iterator[Prometheus]:
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(RULES)],
        "scrape_configs": [{"job_name": "imagesearch", "static_configs": [{"targets": [server.url.removeprefix("http://")]}]}],
    }
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    log = (tmp_path / "prometheus.log").open("wb")
    process = subprocess.Popen(
        [prometheus_binary(), f"--config.file={tmp_path / 'prometheus.yml'}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
         f"--web.listen-address=127.0.0.1:{port}"],
        stdout=log, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while not ready(url):
            assert process.poll() is None and time.monotonic() < deadline, (tmp_path / "prometheus.log").read_text()[-3000:]
            time.sleep(0.2)
        yield Prometheus(url, process)
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/-/ready", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def bounded_load(url: str) -> Counter[str]:
    """Rounds of concurrent image searches plus similar-item, index, bad-parameter and unknown-item requests, until
    both successes and overload rejections were seen (at most MAX_ROUNDS rounds)."""
    image = jpeg_bytes(photo("astronaut").resize((160, 160)))
    statuses: Counter[str] = Counter()
    with httpx.Client(base_url=url, timeout=60) as http, ThreadPoolExecutor(CONCURRENT_SEARCHES) as pool:

        def search(_: int) -> int:
            return http.post("/v1/search", params={"k": 3}, files={"image": ("q.jpg", image, "image/jpeg")}).status_code

        for _ in range(MAX_ROUNDS):
            statuses.update(f"search {status}" for status in pool.map(search, range(CONCURRENT_SEARCHES)))
            for path, params in (("/v1/items/coffee/similar", {"k": 3}), ("/v1/index", {}),
                                 ("/v1/items/coffee/similar", {"k": 101}), ("/v1/items/nope/similar", {})):
                statuses[f"{path} {http.get(path, params=params).status_code}"] += 1
            if statuses["search 200"] and statuses["search 503"]:
                break
    return statuses


def rules() -> list[dict[str, Any]]:
    return [rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]]


def dashboard_queries() -> list[tuple[str, str]]:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    queries = []
    for panel in panels:
        for target in panel.get("targets", []):
            expr = target["expr"]
            for variable, value in GRAFANA_VARIABLES.items():
                expr = expr.replace(variable, value)
            queries.append((panel["title"], expr))
    return queries


def wait_for(prometheus: Prometheus, exprs: list[str], timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while missing := [expr for expr in exprs if not prometheus.query(expr)]:
        assert time.monotonic() < deadline, f"Prometheus never had {missing}"
        time.sleep(0.5)


def test_every_dashboard_query_and_rule_selector_finds_series(server: ServerProcess, prometheus: Prometheus) -> None:
    statuses = bounded_load(server.url)
    assert statuses["search 200"] and statuses["search 503"], statuses
    sent = sum(statuses.values())
    # Prometheus has scraped everything sent, and evaluated every recording rule on it.
    wait_for(prometheus, [f'sum(imagesearch_http_requests_total{{route=~"/v1/.*"}}) >= {sent}'])
    recorded = [rule["record"] for rule in rules() if "record" in rule]
    wait_for(prometheus, recorded)

    queries = dashboard_queries()
    assert len(queries) >= 15
    empty_panels = [(title, expr) for title, expr in queries if not prometheus.query(expr)]
    assert not empty_panels, empty_panels

    exprs = [expr for _, expr in queries] + [rule["expr"] for rule in rules()]
    every_selector = {selector for expr in exprs for selector in selectors(expr)}
    assert len(every_selector) >= 20
    unmatched = {selector for selector in every_selector if not prometheus.query(f"last_over_time({selector}[5m])")}
    assert unmatched == FROM_AIRFLOW, unmatched - FROM_AIRFLOW

    # Prometheus evaluated every shipped rule without an error.
    groups = httpx.get(f"{prometheus.url}/api/v1/rules", timeout=30).json()["data"]["groups"]
    health = {rule["name"]: (rule["health"], rule.get("lastError", "")) for group in groups for rule in group["rules"]}
    assert len(health) == len(rules()) and all(state == ("ok", "") for state in health.values()), health

    # The check fails where it should: a misspelt metric name and a misspelt label value find nothing.
    assert not prometheus.query("imagesearch_http_request_total")
    assert not prometheus.query('imagesearch_http_requests_total{route="/v1/serch"}')
    # And the served version is there, for the dashboard's version panel.
    assert prometheus.query("imagesearch_index_version_info")[0]["metric"]["version"] == "20260101T000000Z"
