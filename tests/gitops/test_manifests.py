"""gitops/: every overlay renders with real kustomize and validates strictly; the Argo CD manifests fit."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from imagesearch import kustomize
from tests.conftest import ROOT

GITOPS = ROOT / "gitops"
OVERLAYS = ("local", "staging", "production")


@pytest.fixture(scope="module", params=OVERLAYS)
def rendered(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    output = tmp_path_factory.mktemp("rendered") / f"{request.param}.yaml"
    output.write_text(kustomize.render_text(GITOPS / "overlays" / request.param))
    return request.param, output


def resources(path: Path) -> dict[str, dict[str, Any]]:
    return {doc["kind"]: doc for doc in yaml.safe_load_all(path.read_text()) if doc}


def test_overlay_validates_strictly_against_current_kubernetes(rendered: tuple[str, Path]) -> None:
    _, output = rendered
    version = kubernetes_validate.latest_version()
    validator = Path(sys.executable).parent / "kubernetes-validate"
    result = subprocess.run([str(validator), "--strict", "--kubernetes-version", version, str(output)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("passed") == 6, result.stdout


def test_overlay_renders_the_serving_contract(rendered: tuple[str, Path]) -> None:
    environment, output = rendered
    docs = resources(output)
    assert set(docs) == {"ServiceAccount", "ConfigMap", "Service", "Deployment", "HorizontalPodAutoscaler",
                         "PodDisruptionBudget"}
    assert {doc["metadata"]["namespace"] for doc in docs.values()} == {f"imagesearch-{environment}"}
    config_map = docs["ConfigMap"]
    # Hash-suffixed, so a version bump changes the pod template and rolls the Deployment.
    assert config_map["metadata"]["name"].startswith("imagesearch-index-")
    assert set(config_map["data"]) == {kustomize.VERSION_KEY, kustomize.REPOSITORY_KEY}

    deployment = docs["Deployment"]["spec"]
    assert "replicas" not in deployment  # the HPA owns it
    assert deployment["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    pod = deployment["template"]["spec"]
    assert deployment["template"]["metadata"]["annotations"]["prometheus.io/scrape"] == "true"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["serviceAccountName"] == docs["ServiceAccount"]["metadata"]["name"]
    workload = kustomize.read_workload(list(docs.values()))
    assert workload.fetch.command == ["python", "-m", "serving.fetch"]
    assert workload.search.command == ["python", "-m", "serving.app"]
    assert workload.config_map == config_map["metadata"]["name"]
    assert workload.fetch.env["IMAGESEARCH_INDEX_DIR"] == workload.search.env["IMAGESEARCH_INDEX_DIR"]
    index_dir = Path(workload.search.env["IMAGESEARCH_INDEX_DIR"])
    for container in [*pod["initContainers"], *pod["containers"]]:
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert container["resources"]["requests"] and container["resources"]["limits"]["memory"]
        mounts = {mount["name"]: mount["mountPath"] for mount in container["volumeMounts"]}
        assert index_dir.is_relative_to(mounts["index"])
    assert {volume["name"]: "emptyDir" in volume for volume in pod["volumes"]}["index"]

    search = pod["containers"][0]
    assert search["startupProbe"]["httpGet"]["path"] == "/healthz"
    assert search["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert search["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert search["ports"] == [{"name": "http", "containerPort": 8000, "protocol": "TCP"}]
    (port,) = docs["Service"]["spec"]["ports"]
    assert (port["port"], port["targetPort"]) == (80, "http")
    hpa = docs["HorizontalPodAutoscaler"]["spec"]
    assert hpa["scaleTargetRef"]["name"] == docs["Deployment"]["metadata"]["name"]
    assert 1 <= hpa["minReplicas"] <= hpa["maxReplicas"]


def test_argo_cd_manifests_point_at_the_overlays() -> None:
    docs = [doc for path in sorted((GITOPS / "apps").glob("*.yaml")) for doc in yaml.safe_load_all(path.read_text()) if doc]
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for doc in docs:
        by_kind.setdefault(doc["kind"], []).append(doc)
    assert set(by_kind) == {"Kustomization", "AppProject", "Application"}
    (project,) = by_kind["AppProject"]
    applications = {app["spec"]["source"]["path"]: app for app in by_kind["Application"]}
    assert set(applications) == {f"gitops/overlays/{name}" for name in OVERLAYS}
    for path, app in applications.items():
        assert app["apiVersion"] == "argoproj.io/v1alpha1"
        assert app["spec"]["project"] == project["metadata"]["name"]
        assert app["spec"]["source"]["repoURL"] in project["spec"]["sourceRepos"]
        assert (ROOT / path / "kustomization.yaml").is_file()
        namespace = yaml.safe_load((ROOT / path / "kustomization.yaml").read_text())["namespace"]
        assert app["spec"]["destination"]["namespace"] == namespace
        assert {"namespace": namespace, "server": app["spec"]["destination"]["server"]} in project["spec"]["destinations"]
    staging = applications["gitops/overlays/staging"]["spec"]["syncPolicy"]["automated"]
    assert staging == {"prune": True, "selfHeal": True}
    assert "automated" not in applications["gitops/overlays/production"]["spec"]["syncPolicy"]
    # `kubectl apply -k gitops/apps` is how Argo CD gets them: the kustomization must render them all.
    rendered = [doc for doc in yaml.safe_load_all(kustomize.render_text(GITOPS / "apps")) if doc]
    assert sorted(doc["metadata"]["name"] for doc in rendered) == sorted(doc["metadata"]["name"] for doc in docs
                                                                         if doc["kind"] != "Kustomization")
    assert {doc["metadata"]["namespace"] for doc in rendered} == {"argocd"}
