"""runner=gke: the plain runner's pod, reached through the GKE cluster settings and the Google connection."""

from __future__ import annotations

from airflow.providers.google.cloud.operators.kubernetes_engine import GKEStartPodOperator

from imagesearch.settings import Settings
from plugins.operators.gke import StepGKEPodOperator, gke_kwargs, gke_pod_kwargs
from plugins.operators.pod import pod_kwargs
from tasks.pipeline import STEP

GKE = Settings.from_env({"IMAGESEARCH_RUNNER": "gke", "IMAGESEARCH_GKE_PROJECT": "acme",
                         "IMAGESEARCH_GKE_LOCATION": "europe-west4", "IMAGESEARCH_GKE_CLUSTER": "batch",
                         "IMAGESEARCH_GCP_CONN_ID": "google_cloud_default"})


def test_the_same_pod_without_the_kubeconfig_connection() -> None:
    plain = pod_kwargs(STEP["embed"], GKE)
    pod = gke_pod_kwargs(plain, GKE)
    assert "kubernetes_conn_id" not in pod
    assert {key: value for key, value in pod.items() if key in plain} == \
        {key: value for key, value in plain.items() if key != "kubernetes_conn_id"}
    assert gke_kwargs(GKE) == {"project_id": "acme", "location": "europe-west4", "cluster_name": "batch",
                               "gcp_conn_id": "google_cloud_default"}
    unnamed = Settings.from_env({"IMAGESEARCH_RUNNER": "gke", "IMAGESEARCH_GKE_LOCATION": "l", "IMAGESEARCH_GKE_CLUSTER": "c"})
    assert gke_kwargs(unnamed)["project_id"] is None


def test_the_operator_keeps_the_steps_links_and_templates() -> None:
    operator = StepGKEPodOperator(task_id="embed", step="embed", workspace="gs://m/runs/v", shard=0,
                                  **gke_pod_kwargs(pod_kwargs(STEP["embed"], GKE), GKE))
    assert operator.cluster_name == "batch" and operator.location == "europe-west4"
    assert {"workspace", "options", "flags"} <= set(operator.template_fields)
    links = {type(link) for link in operator.operator_extra_links}
    assert {type(link) for link in GKEStartPodOperator.operator_extra_links} <= links
    assert operator.step_argv()[:3] == ["python", "-m", "tasks.steps.embed"]
