"""The ``fetch-index`` initContainer: put exactly one verified index version where the server loads it.

    python -m serving.fetch [--version V] [--repository URI] [--index-dir DIR] [--model-id ID]

Defaults come from the environment the Deployment gives it: IMAGESEARCH_INDEX_VERSION and
IMAGESEARCH_MODEL_REPOSITORY (the overlay's ConfigMap) and IMAGESEARCH_INDEX_DIR (in the shared volume).
The version is downloaded beside the target, checked (``_COMMIT``, every file's size and sha256, the
model id this image embeds queries with) and only then renamed into place. Any failure exits non-zero
with one clear line and leaves nothing half-filled behind, so the pod never starts on a bad index.
Prints one JSON summary line on success.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from imagesearch.artifacts import Manifest, check_version, fetch, verify_directory
from imagesearch.embedder_config import model_id_for
from imagesearch.errors import ArtifactError, ImageSearchError
from imagesearch.repository import DEFAULT_RETRY_S, open_repository
from imagesearch.settings import SettingsError, get_settings
from imagesearch.signals import EXIT_TERMINATED, Terminated, terminate_on_sigterm


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m serving.fetch", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", help="index version (default IMAGESEARCH_INDEX_VERSION)")
    parser.add_argument("--repository", help="model repository URI (default IMAGESEARCH_MODEL_REPOSITORY)")
    parser.add_argument("--index-dir", help="where the version goes (default IMAGESEARCH_INDEX_DIR)")
    parser.add_argument("--model-id", help="the model id to require (default: this image's embedder)")
    return parser.parse_args(argv)


def already_there(target: Path, version: str, model_id: str) -> Manifest | None:
    """The manifest if ``target`` already holds ``version``, complete and intact (a restarted pod)."""
    if not target.is_dir():
        return None
    try:
        manifest = verify_directory(target, model_id)
    except ArtifactError:
        return None
    return manifest if manifest.version == version else None


def fetch_index(version: str, repository: str, index_dir: str, model_id: str | None = None,
                retry_s: float = DEFAULT_RETRY_S) -> dict[str, object]:
    if not version:
        raise ArtifactError("no index version to fetch: IMAGESEARCH_INDEX_VERSION is empty "
                            "(the GitOps overlay sets it once the pipeline has deployed a version)")
    check_version(version)
    if model_id is None:
        model_id = model_id_for()
    target = Path(index_dir).absolute()
    manifest = already_there(target, version, model_id)
    reused = manifest is not None
    if manifest is None:
        manifest = fetch(open_repository(repository, retry_s=retry_s), version, target, model_id)
    return {"version": manifest.version, "index_dir": str(target), "items": manifest.item_count,
            "files": len(manifest.files), "model_id": manifest.model.model_id, "reused": reused}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    terminate_on_sigterm()
    began = time.perf_counter()
    try:
        settings = get_settings()
        version = args.version if args.version is not None else settings.serving.index_version
        summary = fetch_index(version, args.repository or settings.storage.model_repository,
                              args.index_dir or settings.serving.index_dir, args.model_id, settings.storage.repository_retry_s)
    except (ImageSearchError, SettingsError, ValueError, OSError) as exc:
        print(f"fetch-index failed: {exc}", file=sys.stderr, flush=True)
        return 1
    except Terminated as exc:
        print(f"fetch-index failed: {exc}", file=sys.stderr, flush=True)
        return EXIT_TERMINATED
    print(json.dumps({**summary, "seconds": round(time.perf_counter() - began, 3)}, sort_keys=True), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
