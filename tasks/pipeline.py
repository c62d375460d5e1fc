"""The pipeline, declared once: its run parameters and its steps, in run order.

The DAG (``dags/image_index.py``), the operator factory (``plugins/operators/factory.py``), the local runner
(``tasks/operations/run_all.py``) and ``bench/pipeline.py`` all read :data:`PARAMS` and :data:`STEPS`; none of them
names a step. To add a step: write ``tasks/steps/<module>.py`` (one function on :mod:`tasks.cli`) and add one
:class:`Step` here, in run order, with its options (:class:`Arg`). To change a step's pod size, give it another
:class:`ResourceClass` (or change the class).

A step's command line is built from the run's inputs (:class:`Inputs`: the run parameters, the model
repository, the version and the serving overlay) by :meth:`Step.argv`, the same for a pod, a local task and
``run_all``. The DAG passes Airflow templates as the inputs (``{{ params.limit }}``); they render to the same
strings ``run_all`` passes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum
from typing import Any

from imagesearch.catalog_formats import suffixes_text, titles_text
from imagesearch.settings import Settings

# Run facts every step may take besides the run parameters.
REPOSITORY = "repository"  # the model repository URI
VERSION = "version"  # the index version the run builds
SERVING_OVERLAY = "serving_overlay"  # the GitOps overlay whose version the candidate is compared with
RUN_FACTS = (REPOSITORY, VERSION, SERVING_OVERLAY)

Inputs = Mapping[str, Any]  # run parameter or run fact name -> value (or the Airflow template that renders it)


@dataclass(frozen=True)
class RunParam:
    """One run parameter: a field of the DAG's trigger form, and an option of ``run_all``."""

    name: str
    kind: type[str] | type[bool] | type[int] | type[float]
    title: str
    description: str
    default: Callable[[Settings], Any]
    minimum: float | None = None  # the least value; for a string, its least length
    maximum: float | None = None
    option: str = ""  # run_all's option; default: --<name with dashes>

    @property
    def flag(self) -> str:
        return self.option or f"--{self.name.replace('_', '-')}"


def _regression(metric: str, label: str, against: str = "the version the overlay serves",
                short: str = "serving") -> RunParam:
    return RunParam(
        f"max_regression_{metric}", float, f"Largest drop in {label} vs {short}",
        f"Regression gate: the candidate's {label} may be at most this much lower than {against}, both scored on "
        "the same query sample.",
        lambda settings: getattr(settings.evaluation, f"max_regression_{metric}"), 0, 1)


PARAMS: tuple[RunParam, ...] = (
    RunParam("catalog_uri", str, "Catalog URI", f"{titles_text()} catalog: a local path, file:// or gs:// URI.",
             lambda settings: settings.pipeline.catalog_uri, minimum=1, option="--catalog"),
    RunParam("full_rebuild", bool, "Full rebuild",
             "Embed every image again and build the index in full instead of updating the last version's.",
             lambda settings: False),
    RunParam("limit", int, "Item limit", "Index at most this many catalog items (0: all of them).",
             lambda settings: 0, minimum=0),
    RunParam("publish", bool, "Publish", "Publish the evaluated index as a new version in the model repository.",
             lambda settings: True),
    RunParam("deploy", bool, "Deploy", "Commit the published version to the GitOps repo (Argo CD rolls it out).",
             lambda settings: True),
    RunParam("model_version", str, "Model version",
             "The trained head (a version in the model repository's models/) the index and queries are projected "
             "with; empty: IMAGESEARCH_MODEL_VERSION, else the pin, else the newest gated one; none: no head "
             "(PCA-whitening).", lambda settings: settings.pipeline.model_version),
    RunParam("min_recall_at_10", float, "Minimum recall@10", "Quality gate: ScaNN vs exact search.",
             lambda settings: settings.evaluation.min_recall_at_10, 0, 1),
    RunParam("min_near_duplicate_top1", float, "Minimum near-duplicate top-1",
             "Quality gate: transformed copies must find their original first.",
             lambda settings: settings.evaluation.min_near_duplicate_top1, 0, 1),
    _regression("recall_at_10", "recall@10"),
    _regression("near_duplicate_top1", "near-duplicate top-1"),
    _regression("category_precision_at_10", "category precision@10"),
)


@dataclass(frozen=True)
class Arg:
    """One option of a step's command line, declared once: the step's CLI (its type, help and default) and the pod
    argv are both made from it.

    ``source``: the run input passed as its value; ``value``: a fixed value instead. With neither, the option is the
    CLI's alone (for a person or a test) and never in a pod's argv. A ``bool`` option is a switch, passed bare when
    its input is true. An option whose value is empty is left out of the argv (the step then uses its default from
    settings).
    """

    flag: str
    help: str
    source: str = ""
    value: str = ""
    kind: type[str] | type[bool] | type[int] | type[float] = str
    default: Any = None

    @property
    def switch(self) -> bool:
        return self.kind is bool

    @property
    def wired(self) -> bool:
        """Whether the pod argv passes it (from a run input, or fixed)."""
        return bool(self.source or self.value)


@dataclass(frozen=True)
class Resources:
    cpu: str
    memory: str
    cpu_limit: str
    memory_limit: str

    @property
    def requests(self) -> dict[str, str]:
        return {"cpu": self.cpu, "memory": self.memory}

    @property
    def limits(self) -> dict[str, str]:
        return {"cpu": self.cpu_limit, "memory": self.memory_limit}


class ResourceClass(StrEnum):
    """A pod size (``IMAGESEARCH_KUBERNETES_RESOURCES`` overrides one step's requests or limits)."""

    TINY = "tiny"
    SMALL = "small"
    MEDIUM = "medium"
    LARGE = "large"

    @property
    def resources(self) -> Resources:
        return RESOURCES[self]


RESOURCES = {
    ResourceClass.TINY: Resources("250m", "256Mi", "1", "1Gi"),
    ResourceClass.SMALL: Resources("500m", "1Gi", "2", "4Gi"),
    ResourceClass.MEDIUM: Resources("2", "4Gi", "4", "16Gi"),
    ResourceClass.LARGE: Resources("4", "8Gi", "8", "32Gi"),
}


@dataclass(frozen=True)
class RetryPolicy:
    """How a step's task is tried again after a transient failure (exit code 1; exit code 2 is never retried)."""

    retries: int | None = None  # None: IMAGESEARCH_TASK_RETRIES
    # Each delay this many times the last, from IMAGESEARCH_RETRY_DELAY_S up to IMAGESEARCH_MAX_RETRY_DELAY_S.
    backoff: float = 2.0

    def attempts(self, settings: Settings) -> int:
        return settings.pipeline.task_retries if self.retries is None else self.retries


@dataclass(frozen=True)
class Step:
    """One pipeline step: a task in the DAG (``name`` is its task id), a pod, a subprocess of ``run_all``."""

    name: str
    doc: str  # the task's doc in the Airflow UI
    timeout: timedelta  # the task's execution_timeout, and its pod's activeDeadlineSeconds
    size: ResourceClass
    args: tuple[Arg, ...] = ()
    module: str = ""  # tasks.steps.<module>; default: the step's name
    sharded: bool = False  # one task per work shard (``--shard i``), mapped over the shards snapshot wrote
    gpu: bool = False  # a GPU node, when settings give the pods GPUs
    deferrable: bool = False  # long steps: wait for the pod in the triggerer, not in a worker slot
    publishes_version: bool = False  # its summary names a published version (the DAG's index Asset, links)
    commits_to_git: bool = False  # pushes to the GitOps repo: only its pod gets the git push credentials Secret
    reads_serving_version: bool = False  # reads the overlay's version from the GitOps repo: the read-only Secret
    enabled_by: tuple[str, ...] = ()  # boolean run parameters that must all be true, else the step is skipped
    # When snapshot found nothing changed: the step does nothing and says so (tasks.unchanged) instead of running.
    skips_when_unchanged: bool = False
    retry: RetryPolicy = field(default_factory=RetryPolicy)

    @property
    def program(self) -> str:
        """The step's module in ``tasks.steps`` (its log lines and summary name it)."""
        return self.module or self.name

    @property
    def command(self) -> list[str]:
        return ["python", "-m", f"tasks.steps.{self.program}"]

    def options(self, inputs: Inputs) -> dict[str, Any]:
        """``{flag: value}`` of the step's valued options, from the run's inputs (values or templates)."""
        return {arg.flag: arg.value or inputs[arg.source] for arg in self.args if arg.wired and not arg.switch}

    def flags(self, inputs: Inputs) -> dict[str, Any]:
        """``{flag: condition}`` of the step's switches, from the run's inputs (values or templates)."""
        return {arg.flag: inputs[arg.source] for arg in self.args if arg.wired and arg.switch}

    def argv(self, workspace: str, options: Mapping[str, Any], flags: Mapping[str, Any],
             shard: int | None = None) -> list[str]:
        """``python -m tasks.steps.<module> --workspace URI [--shard i] [options...]``: a pod's command or a subprocess.

        ``options`` and ``flags`` as :meth:`options` and :meth:`flags` give them, with their values rendered."""
        if self.sharded != (shard is not None):
            raise ValueError(f"step {self.name} {'needs' if self.sharded else 'takes no'} shard")
        argv = [*self.command, "--workspace", workspace, *(["--shard", str(shard)] if shard is not None else [])]
        for name, value in options.items():
            if value is not None and str(value) != "":
                argv += [name, str(value)]
        return argv + [name for name, condition in flags.items() if truthy(condition)]


TRUE_WORDS = frozenset({"true", "1", "yes", "on"})


def truthy(value: object) -> bool:
    """A rendered template (``"True"``, ``"False"``...) or a plain bool, as a bool."""
    return value if isinstance(value, bool) else str(value).strip().lower() in TRUE_WORDS


_REPOSITORY = Arg("--repository", "model repository URI; default from settings", REPOSITORY)
_FLOOR = "floor (default from settings)"
_TOLERANCE = "largest drop vs the serving version (default from settings)"
_PROJECTION = ("a projection.npz (local path, e.g. a model version's weights) the index and queries are projected "
               "with; default: a PCA-whitening learned on the version's vectors")

STEPS: tuple[Step, ...] = (
    Step("snapshot",
         "Validates the catalog, finds new or changed items from metadata (no download) and shards them; fails on a "
         "corrupt catalog.",
         timedelta(minutes=30), ResourceClass.SMALL,
         (Arg("--catalog", f"catalog URI ({suffixes_text()}); default from settings", "catalog_uri"), _REPOSITORY,
          Arg("--version", "index version to build; default: now (UTC)", VERSION),
          Arg("--limit", "keep at most this many items (0: all)", "limit", kind=int, default=0),
          Arg("--full-rebuild", "fetch and embed every image again; never report 'nothing changed'", "full_rebuild",
              kind=bool),
          Arg("--shard-size", "about this many items per work shard (0: IMAGESEARCH_SHARD_SIZE)", kind=int, default=0),
          Arg("--on-sale-only", "keep only the items on sale", kind=bool),
          Arg("--projection", _PROJECTION + "; placed in the workspace for build_index, and compared by 'nothing "
              "changed'; wins over --model-version"),
          Arg("--model-version", "the model version whose head the index is projected with (none: no head); "
              "default: IMAGESEARCH_MODEL_VERSION, the pin, else the newest gated one", "model_version")),
         reads_serving_version=True),
    Step("preprocess",
         "Per shard: fetches, hashes, decodes and fits the new or changed images (the same bytes as before: reused).",
         timedelta(hours=1), ResourceClass.MEDIUM, sharded=True, deferrable=True),
    # auto: CUDA when the node has a GPU (embed's pod asks for one), so pods and local runs share one argv.
    Step("embed", "Per shard: embeds the new images with the CNN (a GPU pod in Kubernetes).",
         timedelta(hours=2), ResourceClass.LARGE,
         (Arg("--device", "auto (CUDA when present), cpu or cuda", value="auto", default="auto"),),
         sharded=True, gpu=True, deferrable=True),
    Step("build_index", "Gathers the reused vectors from the last version (one pass) and the new ones, builds the "
         "ScaNN index.",
         timedelta(hours=1), ResourceClass.LARGE,
         (Arg("--projection", _PROJECTION + "; wins over the workspace's (snapshot's --projection)"),),
         deferrable=True, skips_when_unchanged=True),
    Step("evaluate", "Recall@10, near-duplicate top-1, category precision@10 vs floors and vs the serving version; "
         "fails the run below a gate.",
         timedelta(hours=1), ResourceClass.MEDIUM,
         (Arg("--min-recall", _FLOOR, "min_recall_at_10", kind=float),
          Arg("--min-near-duplicate-top1", _FLOOR, "min_near_duplicate_top1", kind=float),
          Arg("--max-regression-recall", _TOLERANCE, "max_regression_recall_at_10", kind=float),
          Arg("--max-regression-near-duplicate-top1", _TOLERANCE, "max_regression_near_duplicate_top1", kind=float),
          Arg("--max-regression-category-precision", _TOLERANCE, "max_regression_category_precision_at_10", kind=float),
          _REPOSITORY,
          Arg("--serving-overlay", "GitOps overlay whose version the candidate is compared with ('': floors only)",
              SERVING_OVERLAY, default="")),
         deferrable=True, reads_serving_version=True, skips_when_unchanged=True),
    Step("publish",
         "Seals the version in the model repository, `_COMMIT` last; updates the `<repository>/indexes` Asset.",
         timedelta(minutes=30), ResourceClass.SMALL, (_REPOSITORY,), publishes_version=True, enabled_by=("publish",),
         skips_when_unchanged=True),
    Step("deploy", "Commits the version to the GitOps overlay (`tasks.steps.commit_version`), which Argo CD rolls out; "
         "*skipped* (why: in its log) while a rollback pins it.",
         timedelta(minutes=15), ResourceClass.TINY,
         (_REPOSITORY, Arg("--overlay", "overlay path in the GitOps repo; default from settings (IMAGESEARCH_GITOPS_OVERLAY)")),
         module="commit_version", commits_to_git=True, enabled_by=("publish", "deploy"), skips_when_unchanged=True),
)

# The image_model DAG (dags/image_model.py): trains a head on an index version's stored vectors, evaluates and gates
# it, publishes it as a model version. Declared as the index pipeline is, with the same classes.
_CURRENT = ("the model index runs use now (else the raw features)", "the current model")
MODEL_PARAMS: tuple[RunParam, ...] = (
    RunParam("index_version", str, "Index version",
             "The index version whose stored raw vectors, categories and sample images the head learns from; empty: "
             "the version the overlay serves, else the newest committed one.", lambda settings: ""),
    RunParam("copies_per_item", int, "Augmented copies per item",
             "Training copies (crop, rotation, JPEG, blur, exposure, border, grey) made of each training item's "
             "sample image and embedded with the backbone.", lambda settings: 4, 1, 64),
    RunParam("held_out_fraction", float, "Held-out share",
             "The share of items (chosen by a hash of their id) training never sees: the evaluation's queries.",
             lambda settings: 0.25, 0.05, 0.5),
    RunParam("training_steps", int, "Training steps", "Optimiser steps of each fit of the head.",
             lambda settings: 600, 1, 100_000),
    _regression("near_duplicate_top1", "near-duplicate top-1 (mean and worst transform)", *_CURRENT),
    _regression("category_precision_at_10", "category precision@10", *_CURRENT),
    RunParam("publish", bool, "Publish", "Publish the gated head as a new model version in the model repository.",
             lambda settings: True),
)
_MODEL_TOLERANCE = "largest drop vs the current model (default from settings)"
MODEL_STEPS: tuple[Step, ...] = (
    Step("gather_training",
         "Reads the index version's raw vectors and categories, splits off the held-out items, and embeds augmented "
         "copies of the sample images (training copies of training items, evaluation copies of held-out ones).",
         timedelta(hours=2), ResourceClass.LARGE,
         (_REPOSITORY, Arg("--version", "model version to build; default: now (UTC)", VERSION),
          Arg("--index-version", "index version to learn from; default: the served one, else the newest",
              "index_version", default=""),
          Arg("--copies-per-item", "training copies per training item", "copies_per_item", kind=int, default=4),
          Arg("--held-out-fraction", "share of items held out for evaluation", "held_out_fraction", kind=float,
              default=0.25),
          Arg("--device", "auto (CUDA when present), cpu or cuda", value="auto", default="auto")),
         gpu=True, reads_serving_version=True),
    Step("train_model", "Trains the head on the training items' vectors, categories and copies (imagesearch.training).",
         timedelta(hours=2), ResourceClass.LARGE,
         (_REPOSITORY, Arg("--steps", "optimiser steps per fit", "training_steps", kind=int, default=600))),
    Step("evaluate_model", "Scores the candidate, the current model and the raw features on the held-out items and "
         "unseen transforms; fails the run when the candidate is worse than the current model beyond a tolerance.",
         timedelta(hours=1), ResourceClass.MEDIUM,
         (_REPOSITORY,
          Arg("--max-regression-near-duplicate-top1", _MODEL_TOLERANCE, "max_regression_near_duplicate_top1",
              kind=float),
          Arg("--max-regression-category-precision", _MODEL_TOLERANCE, "max_regression_category_precision_at_10",
              kind=float))),
    Step("publish_model", "Publishes the gated head as a model version (`models/<version>/`, `_COMMIT` last).",
         timedelta(minutes=30), ResourceClass.SMALL, (_REPOSITORY,), enabled_by=("publish",)),
)
STEP = {step.name: step for step in (*STEPS, *MODEL_STEPS)}


def stages() -> tuple[tuple[Step, ...], tuple[Step, ...], tuple[Step, ...]]:
    """(the steps before the shards, the per-shard steps, the steps after them); the first step writes the shards."""
    sharded = [index for index, step in enumerate(STEPS) if step.sharded]
    first, last = sharded[0], sharded[-1] + 1
    if sharded != list(range(first, last)) or first == 0:
        raise ValueError("the per-shard steps must be consecutive and follow the step that writes the shards")
    return STEPS[:first], STEPS[first:last], STEPS[last:]


def default_params(settings: Settings, given: Mapping[str, Any] | None = None,
                   params: Iterable[RunParam] = PARAMS) -> dict[str, Any]:
    """Every run parameter: ``given`` ones, else their defaults from settings."""
    given = given or {}
    return {param.name: given[param.name] if given.get(param.name) is not None else param.default(settings)
            for param in params}


def unknown_sources(steps: Iterable[Step] = STEPS, params: Iterable[RunParam] = PARAMS) -> list[str]:
    """Inputs the steps name that are neither a run parameter nor a run fact (a test keeps this empty)."""
    known = {param.name for param in params} | set(RUN_FACTS)
    return [f"{step.name}: {name}" for step in steps
            for name in (*(arg.source for arg in step.args if arg.source), *step.enabled_by) if name not in known]
