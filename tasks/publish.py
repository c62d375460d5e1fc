"""Publish: seal the evaluated index as a version in the model repository, ``_COMMIT`` last."""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

import msgspec

from imagesearch.artifacts import Manifest, ModelInfo, publish, seal
from imagesearch.repository import open_model_repository
from imagesearch.settings import Settings
from tasks import cli, unchanged
from tasks.workspace import LAYOUT, Workspace


def publish_step(args: argparse.Namespace, settings: Settings) -> dict[str, Any]:
    workspace = Workspace(args.workspace, settings.storage.repository_retry_s)
    info = workspace.run_info()
    if (skipped := unchanged.summary(info, "publish")) is not None:
        return skipped
    build = workspace.read_json(LAYOUT.BUILD.key)
    gate = workspace.read_json(LAYOUT.GATE.key) if workspace.exists(LAYOUT.GATE.key) else {"passed": False}
    if not gate["passed"]:
        raise cli.StepFailed("the index has not passed evaluation; refusing to publish")
    metrics = workspace.read_json(LAYOUT.METRICS.key)
    repo = open_model_repository(settings, args.repository)
    with tempfile.TemporaryDirectory(prefix="publish-") as scratch:
        directory = workspace.download_dir(LAYOUT.INDEX.key, Path(scratch))
        manifest = Manifest(
            version=info["version"],
            created_at=build["created_at"],
            item_count=build["items"],
            model=msgspec.convert(build["model"], ModelInfo),
            catalog={"uri": info["catalog_uri"], "snapshot_sha256": build["snapshot_sha256"],
                     "previous_version": info["previous_version"], "rejected_rows": info["rejected_rows"]},
            index={"params": build["params"], "whitening": build.get("whitening")},
            metrics=metrics,
            gate=gate,
        )
        sealed = seal(directory, manifest)
        _, uploaded = publish(repo, directory)
    workspace.mark_committed({"version": sealed.version, "repository": repo.uri})
    return {"version": sealed.version, "repository": repo.uri, "uploaded": uploaded, "items": sealed.item_count,
            "metrics": metrics, "files": len(sealed.files)}


def main(argv: list[str] | None = None) -> int:
    parser = cli.parser("publish", __doc__ or "")
    parser.add_argument("--repository", help="model repository URI; default from settings")
    return cli.run("publish", publish_step, parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
