"""A step as a pod on a GKE cluster: :class:`StepPodOperator`'s pod, started by the Google provider's
``GKEStartPodOperator``, which gets the cluster's endpoint and credentials from the Airflow Google Cloud
connection (``IMAGESEARCH_GCP_CONN_ID``) instead of a kubeconfig.

The pod itself is the plain runner's, field for field (:func:`plugins.operators.pod.pod_kwargs`): only
how Airflow reaches the cluster differs.
"""

from __future__ import annotations

from typing import Any

from airflow.providers.google.cloud.operators.kubernetes_engine import GKEStartPodOperator

from imagesearch.settings import Settings
from plugins.operators.pod import StepPodOperator

# A kubeconfig connection means nothing to GKEStartPodOperator, which builds its own from the cluster.
KUBECONFIG_ONLY = ("kubernetes_conn_id",)


class StepGKEPodOperator(StepPodOperator, GKEStartPodOperator):
    """Runs ``python -m tasks.steps.<step> ...`` in a pod on a GKE cluster; its JSON summary line is the XCom."""

    template_fields = tuple(dict.fromkeys((*StepPodOperator.template_fields, *GKEStartPodOperator.template_fields)))

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # The step's links, and the provider's link to the pod in the Cloud console.
        self.operator_extra_links = (*self.operator_extra_links, *GKEStartPodOperator.operator_extra_links)


def gke_kwargs(settings: Settings) -> dict[str, Any]:
    """The cluster a step pod runs on: ``IMAGESEARCH_GKE_*`` and the Google Cloud connection."""
    return {
        "project_id": settings.google.gke_project or None,
        "location": settings.google.gke_location,
        "cluster_name": settings.google.gke_cluster,
        "gcp_conn_id": settings.google.gcp_conn_id,
    }


def gke_pod_kwargs(pod: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """The plain runner's pod arguments for GKE: the same pod, reached through the cluster settings."""
    return {**{key: value for key, value in pod.items() if key not in KUBECONFIG_ONLY}, **gke_kwargs(settings)}
