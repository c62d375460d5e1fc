"""A step as a local subprocess: the pod's exact argv, run with this venv's python on the worker."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowException, AirflowFailException

from plugins.hooks.process import StepProcessHook
from plugins.operators.command import STEP_TEMPLATE_FIELDS, STEP_TEMPLATE_RENDERERS, StepCommandMixin, parse_summary
from tasks.cli import EXIT_PERMANENT, EXIT_SKIPPED

if TYPE_CHECKING:
    from airflow.sdk import Context


class LocalStepOperator(StepCommandMixin, BaseOperator):
    """Runs ``python -m tasks.steps.<step> ...`` as a child process; its JSON summary line is the XCom."""

    template_fields = STEP_TEMPLATE_FIELDS
    template_fields_renderers = STEP_TEMPLATE_RENDERERS
    ui_color = "#e8f4fd"

    def __init__(
        self,
        *,
        step: str,
        workspace: str,
        options: Mapping[str, Any] | None = None,
        flags: Mapping[str, Any] | None = None,
        shard: int | None = None,
        enabled: str | bool = True,
        termination_grace_s: float = 10.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._init_step(step, workspace, options, flags, shard, enabled)
        self.termination_grace_s = termination_grace_s
        self.hook: StepProcessHook | None = None

    def execute(self, context: Context) -> dict[str, Any]:
        with self.explaining_skips():
            return self._run(context)

    def _run(self, context: Context) -> dict[str, Any]:
        self.skip_unless_enabled()
        self.hook = StepProcessHook()
        result = self.hook.run(self.step_argv())
        if result.returncode == EXIT_SKIPPED:
            raise self.skip_step(parse_summary(result.tail))
        if result.returncode == EXIT_PERMANENT:
            raise AirflowFailException(f"step {self.step} failed and a retry cannot help, {result.reason}")
        if result.returncode != 0:
            raise AirflowException(f"step {self.step} failed, {result.reason}")
        return self.finish(context, parse_summary(result.tail))

    def on_kill(self) -> None:
        if self.hook is not None:
            self.hook.terminate(self.termination_grace_s)
