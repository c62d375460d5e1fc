"""Evaluate the built index: recall@10 vs exact search, near-duplicate hit rate, category precision@10."""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from imagesearch import uri as uris
from imagesearch.augment import near_duplicate
from imagesearch.embedder import Embedder
from imagesearch.errors import ImageError
from imagesearch.index import IndexParams, VectorIndex, exact_search
from imagesearch.index_store import EMBEDDINGS, ITEMS, read_items, read_whitening, search_space
from imagesearch.input_policy import InputPolicy
from imagesearch.preprocess import PreprocessConfig, decode_image
from imagesearch.settings import Settings
from imagesearch.whitening import Whitening
from tasks import cli
from tasks.workspace import Workspace

log = logging.getLogger("evaluate")
K = 10


def recall_at_k(index: VectorIndex, embeddings: np.ndarray, queries: np.ndarray, k: int = K) -> float:
    found, _ = index.search(embeddings[queries], k)
    truth, _ = exact_search(embeddings, embeddings[queries], k)
    hits = sum(len(set(a) & set(b)) for a, b in zip(found.tolist(), truth.tolist(), strict=True))
    return hits / truth.size


def category_precision_at_k(
    index: VectorIndex, embeddings: np.ndarray, categories: list[str], queries: np.ndarray, k: int = K
) -> float:
    found, _ = index.search(embeddings[queries], k + 1)
    precisions = []
    for query, row in zip(queries.tolist(), found.tolist(), strict=True):
        neighbours = [n for n in row if n != query][:k]
        precisions.append(sum(categories[n] == categories[query] for n in neighbours) / max(len(neighbours), 1))
    return float(np.mean(precisions))


def near_duplicate_rates(
    index: VectorIndex,
    embedder: Embedder,
    whitening: Whitening | None,
    image_uris: list[str],
    queries: np.ndarray,
    settings: Settings,
    catalog_uri: str = "",
    batch: int = 32,
) -> tuple[float, float, int]:
    """(top-1 rate, top-10 rate, images used) for transformed copies of sampled catalog images."""
    used, copies = [], []
    policy = InputPolicy.for_images(settings, catalog_uri)
    for row in queries.tolist():
        try:
            data = uris.read_bytes(image_uris[row], policy, max_bytes=settings.max_image_bytes)
            original = decode_image(data, PreprocessConfig.for_pipeline(settings))  # preprocess's caps
            copies.append(embedder.preprocess(near_duplicate(original)))
            used.append(row)
        except ImageError as exc:
            log.warning("near-duplicate sample %s skipped: %s", image_uris[row], exc)
    if not used:
        return 0.0, 0.0, 0
    vectors = search_space(embedder.embed_many(copies, batch), whitening)
    found, _ = index.search(vectors, K)
    top1 = np.mean([row[0] == expected for row, expected in zip(found.tolist(), used, strict=True)])
    top10 = np.mean([expected in row for row, expected in zip(found.tolist(), used, strict=True)])
    return float(top1), float(top10), len(used)


def evaluate(args: argparse.Namespace, settings: Settings) -> dict[str, Any]:
    workspace = Workspace(args.workspace)
    build = workspace.read_json("build/index.json")
    rng = np.random.default_rng(settings.eval_seed)
    with tempfile.TemporaryDirectory(prefix="evaluate-") as scratch:
        directory = workspace.download_dir("index", Path(scratch))
        items = read_items(directory / ITEMS)
        whitening = read_whitening(directory)
        embeddings = search_space(np.load(directory / EMBEDDINGS, allow_pickle=False), whitening)
        index = VectorIndex.load(directory, IndexParams(**build["params"]), len(embeddings))
        size = min(args.sample or settings.eval_sample_size, len(embeddings))
        sample = np.sort(rng.choice(len(embeddings), size=size, replace=False))
        embedder = Embedder(threads=settings.torch_threads)
        if embedder.model_id != build["model"]["model_id"]:
            raise cli.StepFailed(f"index was built with {build['model']['model_id']}, evaluator embeds with {embedder.model_id}")
        recall = recall_at_k(index, embeddings, sample)
        top1, top10, used = near_duplicate_rates(index, embedder, whitening, items["image_uri"], sample, settings,
                                                   workspace.run_info().get("catalog_uri", ""))
        metrics = {"recall_at_10": round(recall, 4), "near_duplicate_top1": round(top1, 4),
                   "near_duplicate_top10": round(top10, 4), "eval_queries": len(sample), "near_duplicate_images": used}
        if len(set(items["category"])) > 1:
            metrics["category_precision_at_10"] = round(category_precision_at_k(index, embeddings, items["category"], sample), 4)
    workspace.write_json("evaluate/metrics.json", metrics)
    failures = []
    min_recall = settings.min_recall_at_10 if args.min_recall is None else args.min_recall
    min_top1 = settings.min_near_duplicate_top1 if args.min_near_duplicate_top1 is None else args.min_near_duplicate_top1
    if recall < min_recall:
        failures.append(f"recall@10 {recall:.3f} < {min_recall}")
    if top1 < min_top1:
        failures.append(f"near-duplicate top-1 {top1:.3f} < {min_top1}")
    if failures:
        workspace.write_json("evaluate/gate.json", {"passed": False, "failures": failures})
        raise cli.StepFailed("quality gate failed, nothing will be published: " + "; ".join(failures))
    workspace.write_json("evaluate/gate.json", {"passed": True, "failures": []})
    return {"metrics": metrics, "passed": True}


def main(argv: list[str] | None = None) -> int:
    parser = cli.parser("evaluate", __doc__ or "")
    parser.add_argument("--sample", type=int, default=0, help="evaluation queries (default from settings)")
    parser.add_argument("--min-recall", type=float, default=None)
    parser.add_argument("--min-near-duplicate-top1", type=float, default=None)
    return cli.run("evaluate", evaluate, parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
