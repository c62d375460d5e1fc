"""Publish: seal the evaluated index as a version in the model repository, ``_COMMIT`` last."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import msgspec

from imagesearch.artifacts import publish, seal
from imagesearch.manifest import Manifest, ModelInfo
from tasks import cli
from tasks.workspace import LAYOUT


def publish_step(context: cli.StepContext) -> dict[str, Any]:
    workspace, info = context.workspace, context.run
    build = workspace.read_json(LAYOUT.BUILD.key)
    gate = workspace.read_json(LAYOUT.GATE.key) if workspace.exists(LAYOUT.GATE.key) else {"passed": False}
    if not gate["passed"]:
        raise cli.StepFailed("the index has not passed evaluation; refusing to publish")
    metrics = workspace.read_json(LAYOUT.METRICS.key)
    repo = context.repository()
    with tempfile.TemporaryDirectory(prefix="publish-") as scratch:
        directory = workspace.download_dir(LAYOUT.INDEX.key, Path(scratch))
        manifest = Manifest(
            version=info["version"],
            created_at=build["created_at"],
            item_count=build["items"],
            model=msgspec.convert(build["model"], ModelInfo),
            catalog={"uri": info["catalog_uri"], "snapshot_sha256": build["snapshot_sha256"],
                     "previous_version": info["previous_version"], "rejected_rows": info["rejected_rows"]},
            index={"params": build["params"], "projection": build["projection"],
                   "model_version": info.get("model_version"),
                   **({"lineage": build["lineage"]} if "lineage" in build else {})},
            metrics=metrics,
            gate=gate,
        )
        sealed = seal(directory, manifest)
        _, uploaded = publish(repo, directory)
    workspace.mark_committed({"version": sealed.version, "repository": repo.uri})
    return {"version": sealed.version, "repository": repo.uri, "uploaded": uploaded, "items": sealed.item_count,
            "metrics": metrics, "files": len(sealed.files)}


main = cli.entry("publish", publish_step, __doc__)

if __name__ == "__main__":
    raise SystemExit(main())
