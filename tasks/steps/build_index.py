"""Build the index: assemble the version's vectors (reused + new: :mod:`tasks.assembly`), project them (a given
projection, else a PCA-whitening learned on them: :mod:`tasks.projection_choice`), store the evaluation's sample
images (:mod:`tasks.samples`), and update the previous version's ScaNN index into this one (:mod:`tasks.index_update`,
keeping its projection and parameters) or build one in full with parameters chosen from the count.

The reused vectors come from the previous version's ``embeddings.npy`` in one pass, here and only here:
read in place when the repository is local (memory-mapped, chunk by chunk), downloaded once when remote,
verified against its manifest either way.
"""

from __future__ import annotations

import logging
import shutil
from contextlib import ExitStack
from datetime import UTC, datetime
from typing import Any

import msgspec
import pyarrow.parquet as pq

from imagesearch.artifacts import read_manifest
from imagesearch.errors import ArtifactError
from imagesearch.index import SCANN_DIR, VectorIndex, choose_params
from imagesearch.index_store import (
    EMBEDDINGS,
    ITEMS,
    SAMPLES,
    SEARCH_SPACE,
    StoredVectors,
    projection_record,
    write_search_space,
    write_vectors,
)
from imagesearch.manifest import Manifest
from imagesearch.projection import PROJECTION
from imagesearch.repository import ModelRepository, open_model_repository
from tasks import cli, index_update, projection_choice
from tasks.assembly import assemble, vector_chunks
from tasks.previous import previous_vectors
from tasks.samples import write_version_samples
from tasks.workspace import LAYOUT

log = logging.getLogger("build_index")


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
    given = projection_choice.given(workspace, context.args.projection, model["dim"])  # checked before any work
    params = choose_params(count, settings.pipeline.brute_force_below, settings.pipeline.reorder_dtype,
                           settings.pipeline.soar_lambda)
    with workspace.store.scratch_dir() as directory, ExitStack() as stack:
        updated, why = index_update.attempt(previous, assembly, model["model_id"], params, given, settings,
                                            workspace.store.scratch_dir, info.get("full_rebuild_reason") or "")
        assembly = updated.assembly if updated is not None else assembly
        log.info("index: %s", f"updating {info['previous_version']}'s" if updated else f"built in full: {why}")
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
        projection = updated.projection if updated else given or projection_choice.fitted(vectors, settings)
        (directory / PROJECTION).write_bytes(projection.to_bytes())
        recorded = projection_record(directory, projection)
        log.info("projection %s: %d -> %d dimensions", recorded["projection_id"], projection.in_dim, projection.out_dim)
        pq.write_table(assembly.items, directory / ITEMS)
        sampled = write_version_samples(workspace, assembly, previous, directory / SAMPLES, settings, info["shards"])
        space = vectors.search_space(projection)  # rows in the order of the items written above
        write_search_space(directory / SEARCH_SPACE, space)
        if updated is not None:
            updated.index.save(directory)
            if why := index_update.check_saved(directory, space, updated.order):
                log.warning("%s: building the index in full", why)
                shutil.rmtree(directory / SCANN_DIR)
                updated = None
        if updated is None:
            index = VectorIndex.build(space, params)
            index.save(directory)
            lineage = index_update.full_lineage(info["version"], count, index, why)
        else:
            params, lineage = updated.params, updated.lineage
        del space
        workspace.check_writable(LAYOUT.INDEX.key)
        workspace.store.delete_prefix(LAYOUT.INDEX.key)
        size = sum(path.stat().st_size for path in directory.rglob("*") if path.is_file())
        workspace.upload_dir(LAYOUT.INDEX.key, directory, move=True)
    workspace.write_json(LAYOUT.BUILD.key, {
        "params": params.to_dict(), "model": model, "items": count, "projection": recorded, "lineage": lineage,
        "snapshot_sha256": assembly.snapshot_sha256,
        # The version's own timestamp, not the clock: a rebuilt version keeps the same manifest.
        "created_at": datetime.strptime(info["version"][:16], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC).isoformat(),
    })
    return {"items": count, "reused": reused, "embedded": count - reused, "samples": sampled,
            "params": params.to_dict(), "projection": recorded, "bytes": size, "model_id": model["model_id"],
            "index": lineage["built"], "full_build_reason": lineage["reason"]}


main = cli.entry("build_index", build_index, __doc__)

if __name__ == "__main__":
    raise SystemExit(main())
