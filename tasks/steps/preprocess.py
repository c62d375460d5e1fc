"""Preprocess one work shard (new or changed items): fetch images concurrently, hash, decode and fit them."""

from __future__ import annotations

import hashlib
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from imagesearch import uri_reader
from imagesearch.embedder_config import EmbedderConfig
from imagesearch.errors import ImageError
from imagesearch.input_policy import InputPolicy
from imagesearch.preprocess import PreprocessConfig, fitted_pixels
from imagesearch.settings import Settings
from imagesearch.stamps import image_stamps
from tasks import cli
from tasks.workspace import LAYOUT

log = logging.getLogger("preprocess")


@dataclass
class Outcome:
    record: dict[str, Any]
    sha256: str = ""
    pixels: np.ndarray | None = None
    reuse_row: int | None = None  # the image's row in the previous version, when its bytes are unchanged
    reason: str = ""
    message: str = ""


def prepare(record: dict[str, Any], settings: Settings, policy: InputPolicy, config: PreprocessConfig) -> Outcome:
    """Fetch (if the input policy allows) + hash one image; decode and fit it unless the item's previous version has
    the same bytes. A refused URI is a failure like any bad image, with reason ``refused``."""
    try:
        data = uri_reader.read_bytes(record["image_uri"], policy, max_bytes=settings.inputs.max_image_bytes)
        sha = hashlib.sha256(data).hexdigest()
        if record.get("previous_sha256") == sha:  # metadata changed, bytes did not: the old vector stays right
            return Outcome(record, sha, reuse_row=record["previous_row"])
        return Outcome(record, sha, pixels=fitted_pixels(data, config))
    except ImageError as exc:
        return Outcome(record, reason=exc.reason, message=str(exc))


def preprocess(context: cli.StepContext) -> dict[str, Any]:
    settings, workspace, info, shard = context.settings, context.workspace, context.run, context.shard
    records = workspace.read_jsonl(LAYOUT.SHARD_ITEMS.of(shard))
    policy = InputPolicy.for_images(settings.inputs, info.get("catalog_uri", ""))
    # Stamped again just before the fetch: the version records the stamp of the bytes it was built from.
    for record, stamp in zip(records, image_stamps([record["image_uri"] for record in records], policy), strict=True):
        record["image_stamp"] = stamp
    # The model's size and fit as the run recorded them (the embed step normalises with the same config).
    config = EmbedderConfig.from_dict(info["embedder"]).preprocess.for_pipeline(settings)
    outcomes: list[Outcome] = []
    with ThreadPoolExecutor(max_workers=settings.inputs.fetch_workers) as pool:
        for done, outcome in enumerate(pool.map(lambda r: prepare(r, settings, policy, config), records), start=1):
            outcomes.append(outcome)
            cli.progress("preprocess", done, len(records), every=100)
    failed = [o for o in outcomes if o.reason]
    good = [o for o in outcomes if not o.reason]
    for outcome in failed[:20]:
        log.warning("skipping %s: %s (%s)", outcome.record["item_id"], outcome.reason, outcome.message)
    workspace.write_jsonl(
        LAYOUT.FAILURES.of(shard),
        (
            {"item_id": o.record["item_id"], "image_uri": o.record["image_uri"], "image_stamp": o.record["image_stamp"],
             "reason": o.reason, "message": o.message}
            for o in failed
        ),
    )
    # Never empty (an empty object is awkward to download from some stores): build_index reads the stamps from it.
    workspace.write_json(LAYOUT.FAILED_STAMPS.of(shard),
                         {o.record["item_id"]: o.record["image_stamp"] for o in failed})
    ratio = len(failed) / max(len(records), 1)
    if ratio > settings.pipeline.max_failure_ratio:
        raise cli.StepFailed(
            f"shard {shard}: {len(failed)} of {len(records)} images failed ({ratio:.0%} > "
            f"{settings.pipeline.max_failure_ratio:.0%}); first: {failed[0].record['item_id']}: {failed[0].message}",
            transient=True,  # images may be missing for a moment (an upload in flight, a storage hiccup)
        )
    to_embed = [o for o in good if o.reuse_row is None]
    pixels = np.stack([o.pixels for o in to_embed]) if to_embed else np.zeros((0, config.size, config.size, 3), np.uint8)
    workspace.write_array(LAYOUT.PIXELS.of(shard), pixels, compressed=True)
    workspace.write_jsonl(
        LAYOUT.PREPROCESSED.of(shard),
        (
            {**o.record, "image_sha256": o.sha256, "status": "embed" if o.reuse_row is None else "reuse",
             "reuse_row": o.reuse_row}
            for o in good
        ),
    )
    reasons: dict[str, int] = {}
    for outcome in failed:
        reasons[outcome.reason] = reasons.get(outcome.reason, 0) + 1
    return {"shard": shard, "items": len(records), "ok": len(good), "to_embed": len(to_embed),
            "reusable": len(good) - len(to_embed), "failed": len(failed), "failure_reasons": reasons}


main = cli.entry("preprocess", preprocess, __doc__)

if __name__ == "__main__":
    raise SystemExit(main())
