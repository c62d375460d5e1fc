"""train_model: a head learned on the training items' raw vectors, categories and copies (imagesearch.training).

Only the training rows gather_training chose are read (as float16, their stored dtype): the held-out items'
vectors, categories and copies never reach training. The head is exported as a ``projection.npz`` (numpy only).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from imagesearch.training.head import HeadConfig, train_head
from tasks import cli, model_run
from tasks.workspace import LAYOUT

log = logging.getLogger("train_model")


def train_model(context: cli.StepContext) -> dict[str, Any]:
    args, settings = context.args, context.settings
    with model_run.opened(context) as run:
        data = run.data
        vectors = run.vectors.take(data.train_rows, run.vectors.dtype)
    categories = data.categories[data.train_rows]
    copy_rows = np.searchsorted(data.train_rows, data.copy_rows)  # rows of the training subset
    config = HeadConfig(steps=args.steps, threads=settings.pipeline.torch_threads,
                        seed=settings.evaluation.eval_seed)
    try:
        trained = train_head(vectors, categories if (categories >= 0).any() else None, data.copies, copy_rows, config)
    except ValueError as exc:
        raise cli.StepFailed(f"cannot train on index version {run.facts['index_version']}: {exc}") from None
    head = trained.projection()
    context.workspace.put_bytes(LAYOUT.HEAD.key, head.to_bytes())
    context.workspace.write_json(LAYOUT.HEAD_REPORT.key, trained.report)
    log.info("trained %s (%s) in %ss", head.projection_id, trained.report.get("chosen"),
             trained.report.get("seconds", {}).get("total"))
    return {"version": run.facts["version"], "projection": head.describe(), "chosen": trained.report.get("chosen"),
            "seconds": trained.report.get("seconds"), "peak_rss_bytes": trained.report.get("peak_rss_bytes")}


main = cli.entry("train_model", train_model, __doc__)

if __name__ == "__main__":
    raise SystemExit(main())
