"""gather_training: the model run's data, from an index version (the served one by default), nothing downloaded.

The raw vectors stay in the index version (later steps read them in place); the categories come from its
``items.parquet``; the copies are made from its ``samples.npz`` images (the fitted images the index run kept) and
embedded with the version's backbone. Items are held out by a hash of their id (``imagesearch.training.evaluation``):
training never sees a held-out item's category or copies, and its evaluation copies are made with transforms whose
parameters training never draws (``imagesearch.augment``).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import numpy as np

from imagesearch.augment import EVALUATION_DISTORTIONS, distort, training_distortions
from imagesearch.embedder import Embedder
from imagesearch.embedder_config import EmbedderConfig
from imagesearch.errors import ImageError
from imagesearch.index_store import ITEMS, SAMPLES, read_items
from imagesearch.manifest import check_version, new_version
from imagesearch.preprocess import decode_image
from imagesearch.training.evaluation import held_out
from tasks import cli
from tasks.model_run import TrainingData, source_index
from tasks.previous import verified_file
from tasks.samples import read_samples
from tasks.workspace import LAYOUT

log = logging.getLogger("gather_training")


def dense_categories(values: list[str | None]) -> np.ndarray:
    """Each row's category as 0..C-1 in sorted order of the names; -1 where it has none."""
    names = sorted({value for value in values if value})
    index = {name: code for code, name in enumerate(names)}
    return np.asarray([index.get(value or "", -1) for value in values], dtype=np.int32)


def gather_training(context: cli.StepContext) -> dict[str, Any]:
    args, settings, workspace = context.args, context.settings, context.workspace
    repo = context.repository()
    existing = workspace.read_json(LAYOUT.TRAINING_RUN.key) if workspace.exists(LAYOUT.TRAINING_RUN.key) else {}
    version = check_version(args.version or existing.get("version") or new_version())
    source = source_index(repo, settings, args.index_version)
    config = EmbedderConfig.from_dict(source.model.config)
    with verified_file(repo, source, ITEMS) as path:
        items = read_items(path)
    if not any(entry.path == SAMPLES for entry in source.files):
        raise cli.StepFailed(f"index version {source.version} keeps no sample images: no copies to learn from")
    with verified_file(repo, source, SAMPLES) as path:
        samples = read_samples(path)
    item_ids = items["item_id"]
    row_of = {item_id: row for row, item_id in enumerate(item_ids)}
    held = held_out(item_ids, args.held_out_fraction)
    categories = dense_categories(items["category"])
    embedder = Embedder(config, device=args.device, threads=settings.pipeline.torch_threads)
    rng = np.random.default_rng(settings.evaluation.eval_seed)
    pictures, rows, transforms = [], [], []
    for item_id, data in sorted(samples.items()):
        if item_id not in row_of:
            continue
        try:
            original = decode_image(data, config.preprocess.for_pipeline(settings))
        except ImageError as exc:
            log.warning("sample %s skipped: %s", item_id, exc)
            continue
        row = row_of[item_id]
        distortions = EVALUATION_DISTORTIONS if held[row] else \
            [training_distortions(rng) for _ in range(args.copies_per_item)]
        for distortion in distortions:
            pictures.append(embedder.preprocess(distort(original, distortion)))
            rows.append(row)
            transforms.append(distortion.name)
    vectors = embedder.embed_many(pictures, settings.pipeline.embed_batch_size) if pictures else \
        np.zeros((0, source.model.dim), np.float32)
    rows_array, names = np.asarray(rows, dtype=np.int64), np.asarray(transforms, dtype=str)
    evaluation = held[rows_array] if len(rows_array) else np.zeros(0, bool)
    training_categories = np.where(held, -1, categories).astype(np.int32)
    data = TrainingData(
        train_rows=np.flatnonzero(~held).astype(np.int64), categories=training_categories,
        eval_categories=categories, copies=vectors[~evaluation].astype(np.float32), copy_rows=rows_array[~evaluation],
        eval_copies=vectors[evaluation].astype(np.float32), eval_copy_rows=rows_array[evaluation],
        eval_transforms=names[evaluation], category_rows=np.flatnonzero(held & (categories >= 0)).astype(np.int64))
    if len(data.copies) == 0 or len(data.eval_copies) == 0:
        raise cli.StepFailed(f"index version {source.version}: {len(data.copy_rows)} training and "
                             f"{len(data.eval_copy_rows)} evaluation copies; both are needed (more sample images: "
                             "IMAGESEARCH_EVAL_SAMPLE_SIZE)")
    workspace.put_bytes(LAYOUT.TRAINING_DATA.key, data.to_bytes())
    facts = {
        # publish_model's created_at: a retried publish makes the same manifest (re-publishing is then a no-op)
        "created_at": existing.get("created_at") or datetime.now(UTC).replace(microsecond=0).isoformat(),
        "version": version, "index_version": source.version, "repository": repo.uri,
        "model": source.model.model_id, "items": len(item_ids), "train_items": len(data.train_rows),
        "held_out_items": int(held.sum()), "categories": int(categories.max(initial=-1) + 1),
        "training_copies": len(data.copies), "evaluation_copies": len(data.eval_copies),
        "category_queries": len(data.category_rows), "held_out_fraction": args.held_out_fraction,
        "copies_per_item": args.copies_per_item,
    }
    workspace.write_json(LAYOUT.TRAINING_RUN.key, facts)
    log.info("%d items (%d held out), %d training and %d evaluation copies from index version %s", facts["items"],
             facts["held_out_items"], facts["training_copies"], facts["evaluation_copies"], source.version)
    return facts


main = cli.entry("gather_training", gather_training, __doc__)

if __name__ == "__main__":
    raise SystemExit(main())
