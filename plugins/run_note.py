"""The run's note: what one ``image_index`` run built and where it went, on the run's page.

The DAG's last task (a teardown: it runs whatever failed, and does not change the run's state) writes a
short Markdown summary: the version, its metrics, the quality-gate verdict, and what publish and deploy did,
with links to the version, the GitOps commit and the search page. It logs it and returns it (its XCom), and
sets it as the run's note through Airflow's REST API when ``IMAGESEARCH_AIRFLOW_API_URL`` and a token file
(``IMAGESEARCH_AIRFLOW_API_TOKEN_FILE``) are set: Airflow 3.3 has no way for a task to set a note through the
Task SDK, and the REST API is the supported one. ``make airflow`` sets both; ``airflow dags test`` has no API
server, so there the log is the summary.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx

from imagesearch.settings import Settings, get_settings
from imagesearch.uri import redact_userinfo
from plugins.links import commit_url, version_url
from tasks.workspace import LAYOUT, Workspace

log = logging.getLogger(__name__)
NOTE_MAX_CHARS = 1000  # the REST API's limit on a note
API_TIMEOUT_S = 30


def gate_verdict(workspace: str) -> tuple[dict[str, float], str]:
    """evaluate's metrics and its verdict ("passed", "failed: why", or "not reached"), from the run workspace."""
    try:
        store = Workspace(workspace, get_settings().storage.repository_retry_s)
        metrics = store.read_json(LAYOUT.METRICS.key) if store.exists(LAYOUT.METRICS.key) else {}
        if not store.exists(LAYOUT.GATE.key):
            return metrics, "not reached"
        gate = store.read_json(LAYOUT.GATE.key)
    except (OSError, ValueError) as exc:  # e.g. no access to the repository from this worker
        return {}, f"unknown (could not read the workspace: {exc})"
    return metrics, "passed" if gate.get("passed") else "failed: " + "; ".join(gate.get("failures", []))


GATE_METRICS = {"recall_at_10": "recall@10", "near_duplicate_top1": "near-duplicate top-1"}


def compose_note(version: str, states: Mapping[str, str | None], metrics: Mapping[str, float], verdict: str,
                 publish: Mapping[str, Any] | None, deploy: Mapping[str, Any] | None, settings: Settings) -> str:
    """The note's Markdown, at most :data:`NOTE_MAX_CHARS` characters. Its first line (all the run page shows
    until the note is opened) has the verdict, the gate metrics and what became of the version."""
    if publish and publish.get("nothing_changed"):  # the served version already is this snapshot: nothing done
        return f"**Nothing changed** — still serving {publish.get('serving_version')}\n- {publish.get('message', '')}"
    gate = ", ".join(f"{label} {metrics[name]:.3g}" for name, label in GATE_METRICS.items() if name in metrics)
    published = version_url(dict(publish or {}))
    outcome = [f"[published]({published})" if published else f"publish {states.get('publish') or 'not run'}"]
    detail = []
    if deploy and deploy.get("commit"):
        commit = deploy["commit"]
        url = commit_url(dict(deploy), settings)
        outcome.append("deployed " + (f"[{commit[:12]}]({url})" if url else f"`{commit[:12]}`"))
        detail.append(f"- deploy: GitOps commit `{commit}` on {deploy.get('overlay', '?')}")
    elif deploy:
        outcome.append("already deployed")
        detail.append(f"- deploy: no change, {deploy.get('overlay', 'the overlay')} already names {version}")
    else:
        outcome.append(f"deploy {states.get('deploy') or 'not run'}")
    headline = f"**Index {version}** — gate {verdict}" + (f" ({gate})" if gate else "") + " — " + ", ".join(outcome)
    lines = [headline]
    if metrics:
        lines.append("- metrics: " + ", ".join(f"{name} {value:.3g}" for name, value in sorted(metrics.items())))
    if publish:
        lines.append(f"- publish: {publish.get('items', '?')} items, {publish.get('files', '?')} files in {published}")
    lines += detail
    if deploy or publish:
        lines.append(f"- [search page]({settings.serving.search_page()})")
    note = "\n".join(lines)
    return note if len(note) <= NOTE_MAX_CHARS else note[: NOTE_MAX_CHARS - 1] + "…"


def set_run_note(settings: Settings, dag_id: str, run_id: str, note: str) -> bool:
    """PATCH the run's note through the REST API; False (and a warning) when it is not configured or fails."""
    if not settings.airflow.api_url or not settings.airflow.api_token_file:
        log.info("IMAGESEARCH_AIRFLOW_API_URL / _API_TOKEN_FILE are not set: the run note is this log")
        return False
    try:
        token = Path(settings.airflow.api_token_file).read_text().strip()
        response = httpx.patch(
            f"{settings.airflow.api_url.rstrip('/')}/api/v2/dags/{dag_id}/dagRuns/{run_id}",
            params={"update_mask": "note"}, json={"note": note},
            headers={"Authorization": f"Bearer {token}"}, timeout=API_TIMEOUT_S,
        )
        response.raise_for_status()
    except (OSError, httpx.HTTPError) as exc:
        log.warning("could not set the run note through %s: %s", redact_userinfo(settings.airflow.api_url),
                    redact_userinfo(str(exc)))
        return False
    return True


def write_run_note(version: str, workspace: str, **context: Any) -> str:
    """The ``run_note`` task: compose, log, set as the run's note, and return the summary."""
    ti, run = context["ti"], context["dag_run"]
    settings = get_settings()
    states = ti.get_task_states(dag_id=ti.dag_id, run_ids=[run.run_id]).get(run.run_id, {})
    publish = ti.xcom_pull(task_ids="publish") if states.get("publish") == "success" else None
    deploy = ti.xcom_pull(task_ids="deploy") if states.get("deploy") == "success" else None
    metrics, verdict = gate_verdict(workspace)
    note = compose_note(version, states, metrics, verdict, publish, deploy, settings)
    log.info("run summary:\n%s", note)
    if set_run_note(settings, ti.dag_id, run.run_id, note):
        log.info("set as the note of run %s", run.run_id)
    return note
