"""Build the index: merge the shards, build ScaNN with parameters chosen from the item count."""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from imagesearch.index import VectorIndex, choose_params
from imagesearch.index_store import EMBEDDINGS, ITEMS, WHITENING, search_space, write_items
from imagesearch.settings import Settings
from imagesearch.whitening import Whitening
from tasks import cli
from tasks.workspace import Workspace, shard_key


def merge_shards(workspace: Workspace, shards: int) -> tuple[list[dict[str, Any]], np.ndarray, dict[str, Any]]:
    records: list[dict[str, Any]] = []
    vectors: list[np.ndarray] = []
    models: dict[str, dict[str, Any]] = {}
    for shard in range(shards):
        records += workspace.read_jsonl(shard_key("preprocess", shard, "items.jsonl"))
        vectors.append(workspace.read_array(shard_key("embed", shard, "embeddings.npy")))
        model = workspace.read_json(shard_key("embed", shard, "model.json"))
        models[model["model_id"]] = model
    if len(models) != 1:
        raise cli.StepFailed(f"shards were embedded with different models: {sorted(models)}")
    embeddings = np.concatenate(vectors)
    if len(embeddings) != len(records):
        raise cli.StepFailed(f"{len(records)} items but {len(embeddings)} embeddings")
    return records, embeddings, models.popitem()[1]


def build_index(args: argparse.Namespace, settings: Settings) -> dict[str, Any]:
    workspace = Workspace(args.workspace)
    info = workspace.run_info()
    records, embeddings, model = merge_shards(workspace, info["shards"])
    if not records:
        raise cli.StepFailed("no embedded items to index")
    params = choose_params(len(records), settings.brute_force_below)
    whitening = None
    if settings.whitening_dims and len(records) >= settings.whitening_min_items:
        whitening = Whitening.fit(embeddings, settings.whitening_dims, settings.whitening_shrinkage)
    with tempfile.TemporaryDirectory(prefix="index-") as scratch:
        directory = Path(scratch)
        write_items(directory / ITEMS, records)
        np.save(directory / EMBEDDINGS, embeddings, allow_pickle=False)
        if whitening is not None:
            (directory / WHITENING).write_bytes(whitening.to_bytes())
        VectorIndex.build(search_space(embeddings, whitening), params).save(directory)
        workspace.check_writable("index")
        workspace.store.delete_prefix("index")
        workspace.upload_dir("index", directory)
        size = sum(path.stat().st_size for path in directory.rglob("*") if path.is_file())
        shutil.rmtree(directory / "scann", ignore_errors=True)
    whitened = None if whitening is None else {"dims": whitening.out_dim, "shrinkage": settings.whitening_shrinkage}
    workspace.write_json("build/index.json", {
        "params": params.to_dict(), "model": model, "items": len(records), "whitening": whitened,
        # The version's own timestamp, not the clock: a rebuilt version keeps the same manifest.
        "created_at": datetime.strptime(info["version"][:16], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC).isoformat(),
    })
    return {"items": len(records), "params": params.to_dict(), "whitening": whitened, "bytes": size,
            "model_id": model["model_id"]}


def main(argv: list[str] | None = None) -> int:
    parser = cli.parser("build_index", __doc__ or "")
    return cli.run("build_index", build_index, parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
