"""The argv of every step: one definition shared by the Airflow operators and the local runner."""

from __future__ import annotations

STEPS = ("snapshot", "preprocess", "embed", "build_index", "evaluate", "publish", "deploy")


def step_argv(step: str, workspace: str, *options: str, shard: int | None = None) -> list[str]:
    """``python -m tasks.<step> --workspace URI [--shard i] [options...]``: a pod's command, or a subprocess."""
    if step not in STEPS:
        raise ValueError(f"unknown step {step!r}; steps are {', '.join(STEPS)}")
    argv = ["python", "-m", f"tasks.{step}", "--workspace", workspace]
    if shard is not None:
        argv += ["--shard", str(shard)]
    return [*argv, *options]


def flag(name: str, enabled: bool) -> list[str]:
    return [name] if enabled else []


def option(name: str, value: object) -> list[str]:
    return [] if value in (None, "", 0) else [name, str(value)]
