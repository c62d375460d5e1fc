"""A step as a Kubernetes pod: the task image running the step's argv as its command.

The step's summary comes back the way it does locally: from the last JSON line of the container's
output, read from the pod's log just before the pod is deleted, so no XCom sidecar is needed and the
container command stays exactly the local argv.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
from airflow.providers.cncf.kubernetes.utils.container import container_is_succeeded
from airflow.sdk.exceptions import AirflowException, AirflowFailException, AirflowSkipException
from kubernetes.client import models as k8s
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from imagesearch.settings import Settings
from plugins.operators.command import (
    STEP_TEMPLATE_FIELDS,
    STEP_TEMPLATE_RENDERERS,
    SUMMARY_TAIL_LINES,
    StepCommandMixin,
    parse_summary,
)
from plugins.operators.specs import step_resources
from tasks.cli import EXIT_PERMANENT, EXIT_SKIPPED
from tasks.pipeline import Step

if TYPE_CHECKING:
    from airflow.sdk import Context

POD_LABELS = {"app.kubernetes.io/name": "image-index", "app.kubernetes.io/part-of": "imagesearch"}
SCRATCH = "/tmp"  # an emptyDir: the root filesystem is read-only, so HOME and every cache live here
SCRATCH_ENV = {"HOME": SCRATCH, "XDG_CACHE_HOME": f"{SCRATCH}/.cache", "TORCH_HOME": f"{SCRATCH}/torch",
               "MPLCONFIGDIR": f"{SCRATCH}/matplotlib", "TMPDIR": SCRATCH}
GPU_STARTUP_TIMEOUT_S = 900  # a GPU node may have to be scaled up first
STARTUP_TIMEOUT_S = 300


class StepPodOperator(StepCommandMixin, KubernetesPodOperator):
    """Runs ``python -m tasks.steps.<step> ...`` in a pod; its JSON summary line is the XCom."""

    template_fields = (*KubernetesPodOperator.template_fields, *STEP_TEMPLATE_FIELDS)
    template_fields_renderers = {**KubernetesPodOperator.template_fields_renderers, **STEP_TEMPLATE_RENDERERS}

    def __init__(
        self,
        *,
        step: str,
        workspace: str,
        options: Mapping[str, Any] | None = None,
        flags: Mapping[str, Any] | None = None,
        shard: int | None = None,
        enabled: str | bool = True,
        **kwargs: Any,
    ) -> None:
        # A step that exits EXIT_SKIPPED (deploy to a pinned overlay) ends as skipped; its reason is in the pod log.
        super().__init__(skip_on_exit_code=EXIT_SKIPPED, **kwargs)
        self._init_step(step, workspace, options, flags, shard, enabled)

    def execute(self, context: Context) -> Any:
        with self.explaining_skips():
            self.skip_unless_enabled()
            return super().execute(context)

    def build_pod_request_obj(self, context: Context | None = None, *, dry_run: bool = False) -> k8s.V1Pod:
        self.cmds = self.step_argv()
        self.arguments = []
        return super().build_pod_request_obj(context, dry_run=dry_run)

    def post_complete_action(
        self, *, pod: k8s.V1Pod, remote_pod: k8s.V1Pod, context: Context, result: dict | None, **kwargs: Any
    ) -> None:
        succeeded = remote_pod is not None and container_is_succeeded(remote_pod, self.base_container_name)
        if succeeded or exit_code(remote_pod, self.base_container_name) == EXIT_SKIPPED:  # a skip's summary has its reason
            try:
                self.summary = self.read_summary(remote_pod)
            except (ApiException, HTTPError) as exc:  # the task then fails (no summary) and retries; the pod still goes
                self.log.warning("could not read the summary from the log of pod %s: %s", remote_pod.metadata.name, exc)
        super().post_complete_action(pod=pod, remote_pod=remote_pod, context=context, result=result, **kwargs)

    def cleanup(self, pod: k8s.V1Pod, remote_pod: k8s.V1Pod) -> None:
        """As the base class, but a step that exited 2 (a retry cannot help) fails the task without retries, and one
        that exited EXIT_SKIPPED is skipped with its reason."""
        try:
            super().cleanup(pod, remote_pod)
        except AirflowSkipException:  # skip_on_exit_code: the step's own reason, not just the exit code
            raise self.skip_step(self.summary) from None
        except AirflowFailException:
            raise
        except AirflowException as exc:
            if exit_code(remote_pod, self.base_container_name) == EXIT_PERMANENT:
                raise AirflowFailException(f"step {self.step} failed and a retry cannot help: {exc}") from exc
            raise

    def read_summary(self, pod: k8s.V1Pod) -> dict[str, Any] | None:
        text = self.client.read_namespaced_pod_log(
            name=pod.metadata.name, namespace=pod.metadata.namespace, container=self.base_container_name,
            tail_lines=SUMMARY_TAIL_LINES,
        )
        return parse_summary(text.splitlines())

    def execute_sync(self, context: Context) -> dict[str, Any]:
        super().execute_sync(context)
        return self.finish(context, self.summary)

    def trigger_reentry(self, context: Context, event: dict[str, Any]) -> dict[str, Any]:
        with self.explaining_skips():
            super().trigger_reentry(context, event)
        return self.finish(context, self.summary)


def exit_code(pod: k8s.V1Pod | None, container: str) -> int | None:
    """The exit code of ``container`` in a finished pod, if it terminated."""
    statuses = (pod.status.container_statuses if pod is not None and pod.status else None) or []
    for status in statuses:
        if status.name == container and status.state is not None and status.state.terminated is not None:
            return status.state.terminated.exit_code
    return None


def pod_kwargs(step: Step, settings: Settings) -> dict[str, Any]:
    """The KubernetesPodOperator arguments of one step, from settings and the step's declaration."""
    gpu = step.gpu and settings.kubernetes.gpu_count > 0
    requests, limits = step_resources(step, settings)
    limits = {**limits, **({settings.kubernetes.gpu_resource: str(settings.kubernetes.gpu_count)} if gpu else {})}
    component = f"image-index-{step.name.replace('_', '-')}"
    kwargs: dict[str, Any] = {
        "kubernetes_conn_id": settings.kubernetes.conn_id,
        "namespace": settings.kubernetes.namespace,
        "image": settings.kubernetes.image,
        "image_pull_policy": settings.kubernetes.image_pull_policy,
        "name": component,
        "labels": {**POD_LABELS, "app.kubernetes.io/component": component},
        "service_account_name": settings.kubernetes.service_account,
        # Steps never call the Kubernetes API (GCS access comes from Workload Identity, not this token).
        "automount_service_account_token": False,
        "env_vars": [k8s.V1EnvVar(name=name, value=value) for name, value in {"PYTHONUNBUFFERED": "1", **SCRATCH_ENV}.items()],
        "env_from": env_sources(step, settings),
        "volumes": [k8s.V1Volume(name="scratch", empty_dir=k8s.V1EmptyDirVolumeSource())],
        "volume_mounts": [k8s.V1VolumeMount(name="scratch", mount_path=SCRATCH)],
        "container_resources": k8s.V1ResourceRequirements(requests=requests, limits=limits),
        "security_context": k8s.V1PodSecurityContext(
            run_as_non_root=True, run_as_user=settings.kubernetes.run_as_user,
            run_as_group=settings.kubernetes.run_as_user, fs_group=settings.kubernetes.run_as_user,
            seccomp_profile=k8s.V1SeccompProfile(type="RuntimeDefault"),
        ),
        "container_security_context": k8s.V1SecurityContext(
            allow_privilege_escalation=False, capabilities=k8s.V1Capabilities(drop=["ALL"]),
            read_only_root_filesystem=True, run_as_non_root=True,
        ),
        "get_logs": True,
        "log_events_on_failure": True,
        "on_finish_action": "delete_pod",
        # A failed step's last log line ("<step> failed: why") becomes the pod's termination message.
        "termination_message_policy": "FallbackToLogsOnError",
        "active_deadline_seconds": int(step.timeout.total_seconds()),
        "startup_timeout_seconds": GPU_STARTUP_TIMEOUT_S if gpu else STARTUP_TIMEOUT_S,
        "deferrable": step.deferrable and settings.kubernetes.deferrable,
    }
    if gpu:
        kwargs["node_selector"] = dict(
            pair.split("=", 1) for pair in settings.kubernetes.gpu_node_selector.split(",") if "=" in pair
        )
        kwargs["tolerations"] = [
            k8s.V1Toleration(key=settings.kubernetes.gpu_toleration, operator="Exists", effect="NoSchedule")
        ]
    return kwargs


def env_sources(step: Step, settings: Settings) -> list[k8s.V1EnvFromSource]:
    """Every step: the settings ConfigMap (the GitOps repo's URL among them, no credentials). The steps that read
    what serves: the read-only git credential Secret too. The step that pushes to git: the push credential Secret,
    and no other step. A later source wins a key both hold, so a Secret's IMAGESEARCH_GITOPS_REPO_URL (the older
    ``https://<token>@host/...`` form) still overrides the ConfigMap's."""
    sources = []
    if settings.kubernetes.env_config_map:
        sources.append(k8s.V1EnvFromSource(config_map_ref=k8s.V1ConfigMapEnvSource(name=settings.kubernetes.env_config_map)))
    secret = (settings.kubernetes.env_secret if step.commits_to_git
              else settings.kubernetes.env_read_secret if step.reads_serving_version else "")
    if secret:
        sources.append(k8s.V1EnvFromSource(secret_ref=k8s.V1SecretEnvSource(name=secret)))
    return sources
