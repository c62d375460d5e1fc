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
from imagesearch.uri import redact_userinfo
from tests.conftest import ROOT

GITOPS = ROOT / "gitops"
OVERLAYS = ("local", "staging", "production")


@pytest.fixture(scope="module", params=OVERLAYS)
def rendered(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    output = tmp_path_factory.mktemp("rendered") / f"{request.param}.yaml"
    output.write_text(kustomize.render_text(GITOPS / "overlays" / request.param))
    return request.param, output


def resources_of(text: str) -> dict[str, dict[str, Any]]:
    return {doc["kind"]: doc for doc in yaml.safe_load_all(text) if doc}


def resources(path: Path) -> dict[str, dict[str, Any]]:
    return resources_of(path.read_text())


def test_overlay_validates_strictly_against_current_kubernetes(rendered: tuple[str, Path]) -> None:
    _, output = rendered
    version = kubernetes_validate.latest_version()
    validator = Path(sys.executable).parent / "kubernetes-validate"
    result = subprocess.run([str(validator), "--strict", "--kubernetes-version", version, str(output)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("passed") == 7, result.stdout


def test_overlay_renders_the_serving_contract(rendered: tuple[str, Path]) -> None:
    environment, output = rendered
    docs = resources(output)
    assert set(docs) == {"ServiceAccount", "ConfigMap", "Service", "Deployment", "HorizontalPodAutoscaler",
                         "PodDisruptionBudget", "NetworkPolicy"}
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


# A million-item version as measured (docs/BENCHMARKS.md, "Pipeline"): 4.63 GiB on disk; the server's peak RSS.
MILLION_ITEM_VERSION_BYTES = 4.63 * 2**30
MILLION_ITEM_PEAK_RSS_BYTES = 4.58e9
UNITS = {"Mi": 2**20, "Gi": 2**30}


def quantity_bytes(quantity: str) -> float:
    return float(quantity[:-2]) * UNITS[quantity[-2:]]


@pytest.mark.parametrize("environment", ["staging", "production"])  # local serves the demo on the base's sizes
def test_cluster_pods_fit_a_million_item_version(environment: str) -> None:
    rendered = resources_of(kustomize.render_text(GITOPS / "overlays" / environment))
    pod = rendered["Deployment"]["spec"]["template"]["spec"]
    index_volume = {volume["name"]: volume for volume in pod["volumes"]}["index"]["emptyDir"]
    # The initContainer fetches the whole version into the index volume, which then also holds the server's reads.
    assert quantity_bytes(index_volume["sizeLimit"]) >= 1.5 * MILLION_ITEM_VERSION_BYTES
    search = {container["name"]: container for container in pod["containers"]}["search"]["resources"]
    assert quantity_bytes(search["limits"]["memory"]) >= 1.2 * MILLION_ITEM_PEAK_RSS_BYTES
    assert quantity_bytes(search["requests"]["memory"]) >= MILLION_ITEM_PEAK_RSS_BYTES


def test_argo_cd_manifests_point_at_the_overlays() -> None:
    docs = [doc for path in sorted((GITOPS / "apps").glob("*.yaml")) for doc in yaml.safe_load_all(path.read_text()) if doc]
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for doc in docs:
        by_kind.setdefault(doc["kind"], []).append(doc)
    assert set(by_kind) == {"Kustomization", "AppProject", "Application"}
    (project,) = by_kind["AppProject"]
    applications = {app["spec"]["source"]["path"]: app for app in by_kind["Application"]}
    assert set(applications) == {f"gitops/overlays/{name}" for name in OVERLAYS} | {"gitops/pipeline"}
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


def test_search_pods_take_ingress_only_on_their_port(rendered: tuple[str, Path]) -> None:
    _, output = rendered
    docs = resources(output)
    policy = docs["NetworkPolicy"]["spec"]
    template = docs["Deployment"]["spec"]["template"]
    assert policy["podSelector"]["matchLabels"].items() <= template["metadata"]["labels"].items()
    assert set(policy["policyTypes"]) == {"Ingress", "Egress"}
    [container] = [c for c in template["spec"]["containers"] if c["name"] == "search"]
    [rule] = policy["ingress"]
    assert rule["ports"] == [{"protocol": "TCP", "port": port["containerPort"]} for port in container["ports"]]
    assert {port["port"] for rule in policy["egress"] for port in rule["ports"]} <= {53, 80, 443, 988}


def test_pipeline_manifests_validate_and_grant_least_privilege(tmp_path: Path) -> None:
    from imagesearch.settings import Settings
    from plugins.operators.pod import POD_LABELS

    output = tmp_path / "pipeline.yaml"
    output.write_text(kustomize.render_text(GITOPS / "pipeline"))
    validator = Path(sys.executable).parent / "kubernetes-validate"
    result = subprocess.run([str(validator), "--strict", str(output)], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.count("passed") == 5, result.stdout + result.stderr
    docs = resources(output)
    settings = Settings.from_env({})
    assert {doc["metadata"]["namespace"] for doc in docs.values()} == {settings.kubernetes.namespace}
    account = docs["ServiceAccount"]
    assert account["metadata"]["name"] == settings.kubernetes.service_account
    assert account["automountServiceAccountToken"] is False
    assert account["metadata"]["annotations"]["iam.gke.io/gcp-service-account"].endswith(".iam.gserviceaccount.com")
    assert "Secret" not in docs  # the git credentials are created out of band, never committed
    assert docs["ConfigMap"]["metadata"]["name"] == settings.kubernetes.env_config_map
    assert docs["ConfigMap"]["data"]["IMAGESEARCH_IMAGE_LOCAL_ROOTS"] == ""
    # Every step learns where the GitOps repo is (snapshot and evaluate compare with what serves), and no
    # credential rides along: the tokens are in the Secrets only the pods that need them get.
    gitops_url = docs["ConfigMap"]["data"]["IMAGESEARCH_GITOPS_REPO_URL"]
    assert gitops_url.startswith("https://") and redact_userinfo(gitops_url) == gitops_url
    staging = yaml.safe_load((GITOPS / "apps" / "staging.yaml").read_text())
    assert gitops_url == staging["spec"]["source"]["repoURL"]  # the repo Argo CD syncs the overlay from
    assert not {key for key in docs["ConfigMap"]["data"] if "TOKEN" in key or "PASSWORD" in key}
    rules = {resource: set(rule["verbs"]) for rule in docs["Role"]["rules"] for resource in rule["resources"]}
    assert rules == {"pods": {"create", "get", "list", "watch", "delete", "patch"}, "pods/log": {"get"},
                     "events": {"list", "watch"}}
    assert docs["RoleBinding"]["roleRef"]["name"] == docs["Role"]["metadata"]["name"]
    steps = docs["NetworkPolicy"]["spec"]
    assert steps["podSelector"]["matchLabels"] == POD_LABELS
    assert set(steps["policyTypes"]) == {"Ingress", "Egress"} and "ingress" not in steps  # no ingress at all
    assert {port["port"] for rule in steps["egress"] for port in rule["ports"]} == {53, 80, 443, 988}
    private = {"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16"}
    for rule in steps["egress"]:
        for peer in rule.get("to", []):
            block = peer["ipBlock"]
            assert block["cidr"] == "169.254.169.254/32" or private <= set(block["except"])  # metadata: WI only


def test_the_app_project_whitelists_exactly_the_kinds_shipped() -> None:
    project = yaml.safe_load((GITOPS / "apps" / "project.yaml").read_text())["spec"]
    apps = [yaml.safe_load(path.read_text()) for path in sorted((GITOPS / "apps").glob("*.yaml"))]
    paths = [app["spec"]["source"]["path"] for app in apps if app["kind"] == "Application"]
    shipped = {
        (doc["apiVersion"].rpartition("/")[0], doc["kind"])
        for path in paths for doc in yaml.safe_load_all(kustomize.render_text(ROOT / path)) if doc
    }
    whitelisted = {(entry["group"], entry["kind"]) for entry in project["namespaceResourceWhitelist"]}
    assert whitelisted == shipped
    assert project["clusterResourceWhitelist"] == [{"group": "", "kind": "Namespace"}]  # CreateNamespace only
