"""
# image_model: train, evaluate, gate and publish a head that learns the catalog

Trains a linear **head** on top of the frozen backbone features of an index version (the one the GitOps overlay
serves, else the newest), daily (`IMAGESEARCH_MODEL_SCHEDULE`) or when triggered here with the form below, and
publishes it as an immutable **model version** (`<model repository>/models/<version>/`: `projection.npz`,
`metrics.json`, `manifest.json`, `_COMMIT` last).

<!-- the tasks: a table made from tasks/pipeline.py -->

Each task runs one `tasks` CLI (`python -m tasks.steps.<module> --workspace ...`) as a Kubernetes pod with
`IMAGESEARCH_RUNNER=kubernetes`, else as a local subprocess with the same argv; the steps are declared once, in
`tasks/pipeline.py` (`MODEL_STEPS`, `MODEL_PARAMS`). The run's workspace is `<model repository>/model-runs/<version>`.

**The evaluation is honest**: items held out by a hash of their id are never trained on, and their copies are made
with transforms whose parameters training never draws. It scores the candidate, the current model (the one index
runs use now) and the raw features on the same queries; a candidate worse than the current model (or, with none,
the raw features) beyond the tolerances fails the run and nothing is published.

**After a run**: the next `image_index` run projects with the newest gated model version (unless its
`model_version` param, `IMAGESEARCH_MODEL_VERSION` or a pin says otherwise) and rebuilds its search space from the
stored raw vectors, fetching and embedding nothing again. Pins and rollback: `python -m tasks.operations.models`.
"""

from __future__ import annotations

from airflow.sdk import DAG, BaseOperator, chain

from imagesearch.settings import get_settings
from plugins.hooks.model_repository import ModelRepositoryHook
from plugins.operators.factory import dag_arguments, step_operator
from plugins.runs import MODEL_WORKSPACE, cron_or_none, dag_params, run_macros, step_inputs
from tasks.pipeline import MODEL_PARAMS, MODEL_STEPS, Step

settings = get_settings()
repository = ModelRepositoryHook(settings.storage.model_repository)
inputs = step_inputs(settings, repository, MODEL_PARAMS)


def step_task(step: Step) -> BaseOperator:
    return step_operator(step, settings, workspace=MODEL_WORKSPACE, inputs=inputs)


def task_table() -> str:
    rows = [(step.name, step.doc) for step in MODEL_STEPS]
    return "\n".join(["| task | what it does |", "|---|---|", *(f"| `{task}` | {doc} |" for task, doc in rows)])


with DAG(
    dag_id="image_model",
    description="Index version's raw vectors -> trained head -> honest evaluation and gate -> published model version",
    doc_md=(__doc__ or "").replace("<!-- the tasks: a table made from tasks/pipeline.py -->", task_table()),
    schedule=cron_or_none(settings.pipeline.model_schedule),
    tags=["imagesearch", "model", settings.pipeline.runner],
    params=dag_params(settings, MODEL_PARAMS),
    **dag_arguments(settings, run_macros(repository)),
) as dag:
    chain(*(step_task(step) for step in MODEL_STEPS))
