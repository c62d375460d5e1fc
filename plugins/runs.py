"""What one run of the ``image_index`` DAG builds: its index version, its workspace, when it runs.

The version comes from the run's ``run_after`` (UTC), so every try of every task of one DAG run works
on the same version and workspace: a retried step is idempotent.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from imagesearch.artifacts import new_version
from imagesearch.settings import Settings
from plugins.hooks.model_repository import ModelRepositoryHook

VERSION = "{{ index_version(dag_run.run_after) }}"
WORKSPACE = "{{ run_workspace(index_version(dag_run.run_after)) }}"
NO_SCHEDULE = frozenset({"", "none", "manual"})


def index_version(run_after: datetime) -> str:
    """The index version a run builds, e.g. ``20261127T050000Z``."""
    return new_version(run_after)


def run_macros(repository: ModelRepositoryHook) -> dict[str, Any]:
    """The DAG's ``user_defined_macros`` behind :data:`VERSION` and :data:`WORKSPACE`."""
    return {"index_version": index_version, "run_workspace": repository.workspace_uri}


def schedule(settings: Settings) -> str | None:
    """``IMAGESEARCH_SCHEDULE`` (a cron expression or preset); ``none``, ``manual`` or empty: triggered runs only."""
    return None if settings.schedule.strip().lower() in NO_SCHEDULE else settings.schedule


def shard_ids(snapshot_summary: dict[str, Any]) -> list[int]:
    """The shards ``snapshot`` wrote, from its summary: what the per-shard tasks are mapped over."""
    return [int(shard) for shard in snapshot_summary["shard_ids"]]
