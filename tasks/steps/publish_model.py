"""publish_model: the gated head as an immutable model version, ``models/<version>/``, ``_COMMIT`` last."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from imagesearch import model_versions
from imagesearch.artifacts import read_manifest
from imagesearch.projection import projection_from_bytes
from tasks import cli
from tasks.workspace import LAYOUT


def publish_model(context: cli.StepContext) -> dict[str, Any]:
    workspace = context.workspace
    if not workspace.exists(LAYOUT.MODEL_EVALUATION.key):
        raise cli.StepFailed("the head has not been evaluated; refusing to publish")
    evaluation = workspace.read_json(LAYOUT.MODEL_EVALUATION.key)
    if not evaluation["gate"]["passed"]:
        raise cli.StepFailed("the head has not passed its gate; refusing to publish")
    facts = workspace.read_json(LAYOUT.TRAINING_RUN.key)
    report = workspace.read_json(LAYOUT.HEAD_REPORT.key)
    repo = context.repository()
    source = read_manifest(repo, facts["index_version"])
    head = projection_from_bytes(workspace.store.get_bytes(LAYOUT.HEAD.key))
    metrics = {f"{model}_{name}": value for model, values in evaluation["metrics"].items()
               for name, value in values.items()}
    training = {"index_version": source.version, "catalog": source.catalog, "data": facts,
                "params": report.get("config", {}), "report": {key: report.get(key) for key in
                                                                ("chosen", "seconds", "peak_rss_bytes", "items")},
                "current_version": evaluation["current_version"]}
    with tempfile.TemporaryDirectory(prefix="publish-model-") as scratch:
        directory = Path(scratch) / facts["version"]
        manifest = model_versions.write_version(
            directory, version=facts["version"], created_at=facts["created_at"],
            projection=head, backbone=source.model, training=training, metrics=metrics, gate=evaluation["gate"],
            item_count=int(facts["train_items"]))
        _, uploaded = model_versions.publish(repo, directory)
    return {"version": manifest.version, "repository": repo.uri, "uploaded": uploaded, "metrics": metrics,
            "projection": head.describe()}


main = cli.entry("publish_model", publish_model, __doc__)

if __name__ == "__main__":
    raise SystemExit(main())
