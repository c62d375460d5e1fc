"""A local step operator for a step, as the factory would make it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from plugins.operators.local import LocalStepOperator


def local_step(step: str, workspace: str | Path, **kwargs: Any) -> LocalStepOperator:
    return LocalStepOperator(task_id=step, step=step, workspace=str(workspace), **kwargs)
