"""Build the index: assemble the version's vectors (reused + new), build ScaNN with parameters chosen from the count.

The reused vectors come from the previous version's ``embeddings.npy`` in one pass, here and only here:
read in place when the repository is local (memory-mapped, chunk by chunk), downloaded once when remote,
verified against its manifest either way. Items keep the snapshot's order (by item id); an item whose
image failed in preprocess is left out.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from imagesearch.artifacts import Manifest, read_manifest
from imagesearch.errors import ArtifactError
from imagesearch.index import VectorIndex, choose_params
from imagesearch.index_store import (
    CHUNK_ROWS,
    EMBEDDINGS,
    ITEM_COLUMNS,
    ITEMS,
    ITEMS_SCHEMA,
    SAMPLES,
    STORED_DTYPE,
    WHITENING,
    StoredVectors,
    write_vectors,
)
from imagesearch.repository import ModelRepository, open_model_repository
from imagesearch.settings import Settings
from imagesearch.whitening import Whitening
from tasks import cli, samples
from tasks.previous import previous_vectors
from tasks.snapshot import SNAPSHOT_FIELDS, snapshot_sha256
from tasks.workspace import LAYOUT, Workspace

log = logging.getLogger("build_index")
WHITENING_SAMPLE = 200_000  # rows the whitening is learned on (a seeded sample beyond that)


@dataclass
class Assembly:
    """The version's items and, per item, where its vector comes from: a row of the previous version or a row
    of this run's new vectors (the other one is -1)."""

    items: pa.Table
    previous_rows: np.ndarray
    fresh_rows: np.ndarray
    fresh: np.ndarray
    model: dict[str, Any] | None
    snapshot_sha256: str


def gather_shards(workspace: Workspace, shards: int) -> tuple[dict[str, tuple[str, int, int]], dict[str, str], np.ndarray,
                                                               dict[str, Any] | None]:
    """item_id -> (image sha256, previous row, fresh row) of every preprocessed item; item_id -> the image stamp
    preprocess saw (failed items too); the new vectors; the model."""
    outcomes: dict[str, tuple[str, int, int]] = {}
    stamps: dict[str, str] = {}
    vectors: list[np.ndarray] = []
    models: dict[str, dict[str, Any]] = {}
    fresh = 0
    for shard in range(shards):
        records = workspace.read_jsonl(LAYOUT.PREPROCESSED.of(shard))
        shard_vectors = workspace.read_array(LAYOUT.EMBEDDINGS.of(shard))
        model = workspace.read_json(LAYOUT.MODEL.of(shard))
        models[model["model_id"]] = model
        embedded = sum(record["status"] == "embed" for record in records)
        if embedded != len(shard_vectors):
            raise cli.StepFailed(f"shard {shard}: {embedded} images to embed but {len(shard_vectors)} vectors")
        stamps.update(workspace.read_json(LAYOUT.FAILED_STAMPS.of(shard)))
        stamps.update((record["item_id"], record["image_stamp"]) for record in records)
        for record in records:
            if record["status"] == "embed":
                outcomes[record["item_id"]] = (record["image_sha256"], -1, fresh)
                fresh += 1
            else:  # the same bytes as in the previous version
                outcomes[record["item_id"]] = (record["image_sha256"], record["reuse_row"], -1)
        vectors.append(shard_vectors)
    if len(models) > 1:
        raise cli.StepFailed(f"shards were embedded with different models: {sorted(models)}")
    fresh_vectors = np.concatenate(vectors) if vectors else np.zeros((0, 0), np.float32)
    return outcomes, stamps, fresh_vectors, (models.popitem()[1] if models else None)


def assemble(workspace: Workspace, info: dict[str, Any]) -> Assembly:
    plan = pq.read_table(io.BytesIO(workspace.store.get_bytes(LAYOUT.PLAN.key)))
    outcomes, stamps, fresh, model = gather_shards(workspace, info["shards"])
    ids = plan.column("item_id").to_pylist()
    if stamps:
        seen = [stamps.get(item_id, stamp) for item_id, stamp in zip(ids, plan.column("image_stamp").to_pylist(), strict=True)]
        plan = plan.set_column(plan.schema.get_field_index("image_stamp"), "image_stamp", pa.array(seen, pa.string()))
    reuse = plan.column("reuse_row").to_numpy()
    shas = plan.column("image_sha256").to_pylist()
    keep, previous_rows, fresh_rows = [], [], []
    for position, item_id in enumerate(ids):
        if reuse[position] >= 0:
            keep.append(position)
            previous_rows.append(int(reuse[position]))
            fresh_rows.append(-1)
        elif item_id in outcomes:  # an item preprocess fetched (one that failed there is left out)
            shas[position], previous_row, fresh_row = outcomes[item_id]
            keep.append(position)
            previous_rows.append(previous_row)
            fresh_rows.append(fresh_row)
    items = plan.set_column(plan.schema.get_field_index("image_sha256"), "image_sha256", pa.array(shas, pa.string()))
    items = items.take(pa.array(keep, pa.int64())).select(list(ITEM_COLUMNS)).cast(ITEMS_SCHEMA)
    # The snapshot as built: every catalog item (failed ones too) with the stamp its image had when fetched.
    snapshot_hash = snapshot_sha256(plan.select(list(SNAPSHOT_FIELDS)).to_pylist())
    return Assembly(items, np.asarray(previous_rows, np.int64), np.asarray(fresh_rows, np.int64), fresh, model,
                    snapshot_hash)


def vector_chunks(assembly: Assembly, previous: StoredVectors | None, dim: int) -> Iterator[np.ndarray]:
    """The kept items' raw vectors in order, in the stored dtype, CHUNK_ROWS at a time (previous rows ascend: one
    sequential pass; reused rows are copied as stored, never converted)."""
    for start in range(0, len(assembly.previous_rows), CHUNK_ROWS):
        old = assembly.previous_rows[start : start + CHUNK_ROWS]
        new = assembly.fresh_rows[start : start + CHUNK_ROWS]
        chunk = np.empty((len(old), dim), STORED_DTYPE)
        reused = old >= 0
        if reused.any():
            rows = old[reused]
            order = np.argsort(rows, kind="stable")
            values = np.empty((len(rows), dim), STORED_DTYPE)
            values[order] = previous.take(rows[order], STORED_DTYPE)  # type: ignore[union-attr]
            chunk[reused] = values
        if not reused.all():
            chunk[~reused] = assembly.fresh[new[~reused]]
        yield chunk


def whitening_for(vectors: StoredVectors, settings: Settings) -> Whitening | None:
    if not settings.pipeline.whitening_dims or len(vectors) < settings.pipeline.whitening_min_items:
        return None
    rows = np.arange(len(vectors))
    if len(rows) > WHITENING_SAMPLE:
        rows = np.sort(np.random.default_rng(0).choice(len(rows), WHITENING_SAMPLE, replace=False))
    return Whitening.fit(vectors.take(rows), settings.pipeline.whitening_dims, settings.pipeline.whitening_shrinkage)


def write_samples(workspace: Workspace, assembly: Assembly, previous: tuple[ModelRepository, Manifest] | None,
                  target: Path, settings: Settings, shards: int) -> int:
    """samples.npz: fitted images of up to eval_sample_size items, from pixels this run fetched or the previous sample."""
    ids = assembly.items.column("item_id").to_pylist()
    fresh_ids = [item_id for item_id, row in zip(ids, assembly.fresh_rows.tolist(), strict=True) if row >= 0]
    reused_ids = [item_id for item_id, row in zip(ids, assembly.previous_rows.tolist(), strict=True) if row >= 0]
    stored = samples.previous_samples(*previous, reused_ids) if previous is not None else {}
    evaluation = settings.evaluation
    chosen_fresh, chosen_reused = samples.choose(fresh_ids, stored, evaluation.eval_sample_size, evaluation.eval_seed)
    picked = {item_id: stored[item_id] for item_id in chosen_reused}
    wanted = set(chosen_fresh)
    for shard in range(shards):
        records = workspace.read_jsonl(LAYOUT.PREPROCESSED.of(shard))
        embedded = [record["item_id"] for record in records if record["status"] == "embed"]
        if wanted.isdisjoint(embedded):
            continue
        pixels = workspace.read_array(LAYOUT.PIXELS.of(shard))
        for item_id, image in zip(embedded, pixels, strict=True):
            if item_id in wanted:
                picked[item_id] = samples.encode(image)
    samples.write_samples(target, picked)
    return len(picked)


def build_index(context: cli.StepContext) -> dict[str, Any]:
    settings, workspace, info = context.settings, context.workspace, context.run
    assembly = assemble(workspace, info)
    count = assembly.items.num_rows
    if not count:
        raise cli.StepFailed("no embedded items to index")
    reused = int((assembly.previous_rows >= 0).sum())
    previous: tuple[ModelRepository, Manifest] | None = None
    if info["previous_version"]:
        repo = open_model_repository(settings, info["repository"])
        previous = (repo, read_manifest(repo, info["previous_version"]))
    elif reused:
        raise cli.StepFailed(f"{reused} items reuse vectors but the run has no previous version")
    model = assembly.model or (msgspec.to_builtins(previous[1].model) if previous is not None else None)
    if model is None or model["model_id"] != info["model_id"]:
        raise cli.StepFailed(f"the vectors were made with {model and model['model_id']}, the run plans {info['model_id']}")
    params = choose_params(count, settings.pipeline.brute_force_below)
    with workspace.store.scratch_dir() as directory, ExitStack() as stack:
        old = None
        try:
            if reused and previous is not None:
                old = stack.enter_context(previous_vectors(*previous))
            write_vectors(directory / EMBEDDINGS, vector_chunks(assembly, old, model["dim"]), (count, model["dim"]))
        except ArtifactError as exc:  # never a wrong vector: the run stops, a full rebuild embeds everything
            raise cli.StepFailed(f"cannot reuse the vectors of {info['previous_version']}: {exc}; "
                                 "run again with full_rebuild") from None
        stack.close()
        log.info("%d vectors: %d reused from %s, %d new", count, reused, info["previous_version"], count - reused)
        vectors = StoredVectors(directory / EMBEDDINGS)
        whitening = whitening_for(vectors, settings)
        if whitening is not None:
            (directory / WHITENING).write_bytes(whitening.to_bytes())
        pq.write_table(assembly.items, directory / ITEMS)
        sampled = write_samples(workspace, assembly, previous, directory / SAMPLES, settings, info["shards"])
        VectorIndex.build(vectors.search_space(whitening), params).save(directory)
        workspace.check_writable(LAYOUT.INDEX.key)
        workspace.store.delete_prefix(LAYOUT.INDEX.key)
        size = sum(path.stat().st_size for path in directory.rglob("*") if path.is_file())
        workspace.upload_dir(LAYOUT.INDEX.key, directory, move=True)
    whitened = None if whitening is None else {"dims": whitening.out_dim, "shrinkage": settings.pipeline.whitening_shrinkage}
    workspace.write_json(LAYOUT.BUILD.key, {
        "params": params.to_dict(), "model": model, "items": count, "whitening": whitened,
        "snapshot_sha256": assembly.snapshot_sha256,
        # The version's own timestamp, not the clock: a rebuilt version keeps the same manifest.
        "created_at": datetime.strptime(info["version"][:16], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC).isoformat(),
    })
    return {"items": count, "reused": reused, "embedded": count - reused, "samples": sampled,
            "params": params.to_dict(), "whitening": whitened, "bytes": size, "model_id": model["model_id"]}


main = cli.entry("build_index", build_index, __doc__)

if __name__ == "__main__":
    raise SystemExit(main())
