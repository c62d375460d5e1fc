"""The evaluation's near-duplicate sample, stored with every version (``samples.npz``).

Fitted images of up to ``eval_sample_size`` items, as JPEG: taken from the pixels this run already
fetched (its new or changed items) and, for items the run reused unchanged, from the previous version's
own sample. ``evaluate`` makes its near-duplicate queries from them: no image is downloaded again.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from PIL import Image

from imagesearch.errors import ArtifactError
from imagesearch.index_store import SAMPLES
from imagesearch.manifest import Manifest
from imagesearch.repository import ModelRepository
from imagesearch.settings import Settings
from tasks.assembly import Assembly
from tasks.previous import verified_file
from tasks.workspace import LAYOUT, Workspace

log = logging.getLogger("samples")
JPEG_QUALITY = 95


def encode(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", quality=JPEG_QUALITY)
    return buffer.getvalue()


def write_samples(path: Path, samples: dict[str, bytes]) -> None:
    ids = sorted(samples)
    blobs = [samples[item_id] for item_id in ids]
    offsets = np.cumsum([0, *(len(blob) for blob in blobs)], dtype=np.int64)
    data = np.frombuffer(b"".join(blobs), dtype=np.uint8)
    np.savez(path, item_ids=np.asarray(ids, dtype=str), offsets=offsets, data=data)


def read_samples(path: Path) -> dict[str, bytes]:
    """item_id -> JPEG of its fitted image ({} when the file is absent)."""
    if not path.is_file():
        return {}
    with np.load(path, allow_pickle=False) as archive:
        ids, offsets, data = archive["item_ids"].tolist(), archive["offsets"], archive["data"].tobytes()
    return {item_id: data[offsets[i] : offsets[i + 1]] for i, item_id in enumerate(ids)}


def previous_samples(repo: ModelRepository, manifest: Manifest | None, reused: Iterable[str]) -> dict[str, bytes]:
    """The previous version's samples of the items reused unchanged ({} when it has none or they are unreadable)."""
    if manifest is None or not any(entry.path == SAMPLES for entry in manifest.files):
        return {}
    try:
        with verified_file(repo, manifest, SAMPLES) as path:
            stored = read_samples(path)
    except ArtifactError as exc:
        log.warning("not using the samples of version %s: %s", manifest.version, exc)
        return {}
    return {item_id: stored[item_id] for item_id in reused if item_id in stored}


def choose(fresh: list[str], reused: dict[str, bytes], size: int, seed: int) -> tuple[list[str], list[str]]:
    """(fresh item ids, reused item ids) to sample: new images first, topped up with the previous sample."""
    rng = np.random.default_rng(seed)
    picked = sorted(rng.choice(len(fresh), size=min(size, len(fresh)), replace=False).tolist()) if fresh else []
    chosen_fresh = [fresh[i] for i in picked]
    keep = sorted(reused)
    room = size - len(chosen_fresh)
    chosen_reused = sorted(rng.choice(keep, size=min(room, len(keep)), replace=False).tolist()) if keep and room > 0 else []
    return chosen_fresh, chosen_reused


def write_version_samples(workspace: Workspace, assembly: Assembly, previous: tuple[ModelRepository, Manifest] | None,
                          target: Path, settings: Settings, shards: int) -> int:
    """samples.npz: fitted images of up to eval_sample_size items, from pixels this run fetched or the previous sample."""
    ids = assembly.items.column("item_id").to_pylist()
    fresh_ids = [item_id for item_id, row in zip(ids, assembly.fresh_rows.tolist(), strict=True) if row >= 0]
    reused_ids = [item_id for item_id, row in zip(ids, assembly.previous_rows.tolist(), strict=True) if row >= 0]
    stored = previous_samples(*previous, reused_ids) if previous is not None else {}
    evaluation = settings.evaluation
    chosen_fresh, chosen_reused = choose(fresh_ids, stored, evaluation.eval_sample_size, evaluation.eval_seed)
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
                picked[item_id] = encode(image)
    write_samples(target, picked)
    return len(picked)
