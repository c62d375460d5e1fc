"""What both step operators share: the step's argv, the run gate, and the step's one-line JSON summary.

The argv is built by :meth:`tasks.pipeline.Step.argv` (the single definition of a step's command line) from
templated parts, after Airflow rendered them:

* ``workspace``: the run workspace URI (templated: it holds the run's index version);
* ``options``: ``{"--name": value}``, each rendered value passed as ``--name value`` (dropped when empty);
* ``flags``: ``{"--name": condition}``, ``--name`` passed when the rendered condition is true;
* ``shard``: the shard a per-shard task works on (``--shard i``; a mapped argument resolves at render), or None.

``enabled`` (templated, e.g. ``"{{ params.publish }}"``) skips the task when it renders false. Whatever
skips a step task, its reason is logged at INFO from ``execute`` (:meth:`StepCommandMixin.explaining_skips`), so
it shows in the task's visible log and not only in Airflow's collapsed post-execute group.

The summary line is logged once, as the step printed it (the process's or the pod's output).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from airflow.sdk import Asset
from airflow.sdk.exceptions import AirflowException, AirflowSkipException

from plugins.links import step_links
from tasks.pipeline import STEP, truthy

if TYPE_CHECKING:
    from airflow.sdk import Context
    from structlog.typing import FilteringBoundLogger

STEP_TEMPLATE_FIELDS = ("workspace", "options", "flags", "shard", "enabled")
STEP_TEMPLATE_RENDERERS = {"options": "json", "flags": "json"}
SUMMARY_TAIL_LINES = 200  # how much of a finished step's output is searched for its summary line


def parse_summary(lines: Iterable[str]) -> dict[str, Any] | None:
    """The step's summary: the last output line that is a JSON object (steps log to stderr, not JSON)."""
    for line in reversed(list(lines)):
        text = line.strip()
        if not (text.startswith("{") and text.endswith("}")):
            continue
        try:
            value = json.loads(text)
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    return None


class StepCommandMixin:
    """Mixed into both step operators, before their Airflow base class."""

    step: str  # the step's name in tasks.pipeline.STEPS
    workspace: str
    options: Mapping[str, Any]
    flags: Mapping[str, Any]
    shard: int | None
    enabled: str | bool
    summary: dict[str, Any] | None  # a finished step's summary, for its extra links
    task_id: str
    outlets: list[Any]
    log: FilteringBoundLogger

    def _init_step(
        self,
        step: str,
        workspace: str,
        options: Mapping[str, Any] | None,
        flags: Mapping[str, Any] | None,
        shard: int | None,
        enabled: str | bool,
    ) -> None:
        self.step = step
        self.workspace = workspace
        self.options = dict(options or {})
        self.flags = dict(flags or {})
        self.shard = shard
        self.enabled = enabled
        self.summary = None
        self.operator_extra_links = step_links(STEP[step])

    def step_argv(self) -> list[str]:
        """``python -m tasks.steps.<module> --workspace URI [--shard i] ...``: the pod's command, or the subprocess."""
        return STEP[self.step].argv(self.workspace, self.options, self.flags, self.shard)

    @contextlib.contextmanager
    def explaining_skips(self) -> Iterator[None]:
        """Around ``execute``: any skip's reason is logged where the task's log is read."""
        try:
            yield
        except AirflowSkipException as skip:
            self.log.info("Skipped: %s", skip)
            raise

    def skip_unless_enabled(self) -> None:
        if not truthy(self.enabled):
            raise AirflowSkipException(f"{self.task_id} is switched off for this run (enabled={self.enabled!r})")

    def skip_step(self, summary: dict[str, Any] | None) -> AirflowSkipException:
        """The step exited with EXIT_SKIPPED: the task ends as skipped, with the step's reason (logged by
        :meth:`explaining_skips`; the summary line is already in the log, as the step printed it)."""
        reason = (summary or {}).get("skipped") or "the step decided it had nothing it may do"
        return AirflowSkipException(f"step {self.step} skipped: {reason}")

    def finish(self, context: Context, summary: dict[str, Any] | None) -> dict[str, Any]:
        """The XCom of a successful step: its summary; a published version is recorded on the outlet Asset."""
        if summary is None:
            raise AirflowException(f"step {self.step} exited 0 but printed no JSON summary line")
        for outlet in self.outlets:
            if isinstance(outlet, Asset) and "version" in summary:
                context["outlet_events"][outlet].extra.update(
                    {key: summary[key] for key in ("version", "repository", "items", "metrics") if key in summary}
                )
        self.summary = summary
        return summary
