"""What one run of the ``image_index`` DAG builds: its index version, its workspace, when it runs.

The version comes from the run's ``run_after`` (UTC) and a suffix hashed from its ``run_id``, so every try
of every task of one DAG run works on the same version and workspace (a retried step is idempotent), while
two runs never share one, even when triggered in the same second or with the same ``run_after``.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, Protocol

from airflow.sdk import Asset, AssetOrTimeSchedule, CronTriggerTimetable, Param

from imagesearch.manifest import new_version
from imagesearch.settings import Settings
from plugins.catalog_watch import catalog_asset
from plugins.hooks.model_repository import ModelRepositoryHook
from tasks.pipeline import PARAMS, REPOSITORY, SERVING_OVERLAY, RunParam
from tasks.pipeline import VERSION as VERSION_INPUT

VERSION = "{{ index_version(dag_run) }}"
WORKSPACE = "{{ run_workspace(index_version(dag_run)) }}"
MODEL_WORKSPACE = "{{ model_workspace(index_version(dag_run)) }}"  # the image_model DAG's
NO_SCHEDULE = frozenset({"", "none", "manual"})
JSON_TYPES = {str: "string", bool: "boolean", int: "integer", float: "number"}


class DagRunLike(Protocol):
    run_id: str
    run_after: datetime


def index_version(dag_run: DagRunLike) -> str:
    """The index version a run builds, e.g. ``20261127T050000Z-1a2b3c4d`` (the suffix from the run id)."""
    return new_version(dag_run.run_after, unique=f"{dag_run.run_id}")


def run_macros(repository: ModelRepositoryHook) -> dict[str, Any]:
    """The DAG's ``user_defined_macros`` behind :data:`VERSION` and :data:`WORKSPACE`."""
    return {"index_version": index_version, "run_workspace": repository.workspace_uri,
            "model_workspace": repository.model_workspace_uri}


def schedule_expression(settings: Settings) -> str | None:
    """``IMAGESEARCH_SCHEDULE`` (a cron expression or preset); ``none``, ``manual`` or empty: triggered runs only."""
    return cron_or_none(settings.pipeline.schedule)


def cron_or_none(expression: str) -> str | None:
    """A schedule setting as Airflow takes it: ``none``, ``manual`` or empty -> None (triggered runs only)."""
    return None if expression.strip().lower() in NO_SCHEDULE else expression


def watched_catalog(settings: Settings) -> Asset | None:
    """The catalog's Asset when a new snapshot also starts a run: a ``gs://`` catalog and a scheduled DAG."""
    return catalog_asset(settings) if schedule_expression(settings) is not None else None


def schedule(settings: Settings) -> str | AssetOrTimeSchedule | None:
    """image_index's schedule: ``IMAGESEARCH_SCHEDULE``, or else a new snapshot of a ``gs://`` catalog
    (``plugins/catalog_watch.py``), whichever comes first; None: triggered runs only."""
    expression, catalog = schedule_expression(settings), watched_catalog(settings)
    if expression is None or catalog is None:
        return expression
    return AssetOrTimeSchedule(timetable=CronTriggerTimetable(expression, timezone="UTC"), assets=catalog)


def dag_params(settings: Settings, run_params: Iterable[RunParam] = PARAMS) -> dict[str, Param]:
    """The trigger form: one typed, validated Param per run parameter (of :data:`tasks.pipeline.PARAMS`, or the model
    DAG's)."""
    params = {}
    for param in run_params:
        schema: dict[str, Any] = {"type": JSON_TYPES[param.kind]}
        if param.minimum is not None:
            schema["minLength" if param.kind is str else "minimum"] = param.minimum
        if param.maximum is not None:
            schema["maximum"] = param.maximum
        params[param.name] = Param(param.default(settings), title=param.title, description=param.description, **schema)
    return params


def step_inputs(settings: Settings, repository: ModelRepositoryHook,
                run_params: Iterable[RunParam] = PARAMS) -> dict[str, Any]:
    """What the run gives its steps (:data:`tasks.pipeline.Inputs`): the params as templates, and the run's facts."""
    return {**{param.name: f"{{{{ params.{param.name} }}}}" for param in run_params},
            REPOSITORY: repository.uri, VERSION_INPUT: VERSION, SERVING_OVERLAY: settings.gitops.overlay}


def shard_ids(snapshot_summary: dict[str, Any]) -> list[int]:
    """The shards ``snapshot`` wrote, from its summary: what the per-shard tasks are mapped over."""
    return [int(shard) for shard in snapshot_summary["shard_ids"]]
