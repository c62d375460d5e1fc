"""The ``fetch-index`` initContainer: put exactly one verified index version where the server loads it.

    python -m serving.fetch [--version V] [--repository URI] [--index-dir DIR] [--model-id ID]

Defaults come from the environment the Deployment gives it: IMAGESEARCH_INDEX_VERSION and
IMAGESEARCH_MODEL_REPOSITORY (the overlay's ConfigMap) and IMAGESEARCH_INDEX_DIR (in the shared volume).
Before any of the version's files is downloaded, its manifest is checked for a model this image can embed
queries with (``model.config``: a backbone its registry knows with the same spec and weights sha256, whose
weights package is installed with that very file: :func:`imagesearch.embedder_config.servable_config`); a
version that records no backbone is refused with a word to rebuild it. The version is then downloaded beside
the target, checked (``_COMMIT``, every file's size and sha256, the model id) and only then renamed into
place. Any failure exits non-zero with one clear line and leaves nothing half-filled behind, so the pod never
starts on a bad index.
Prints one JSON summary line on success.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from imagesearch.artifacts import Manifest, check_version, fetch, read_manifest, verify_directory
from imagesearch.embedder_config import servable_config
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
    parser.add_argument("--model-id", help="the model id to require as well (default: any this image can embed with)")
    return parser.parse_args(argv)


def already_there(target: Path, version: str) -> Manifest | None:
    """The manifest if ``target`` already holds ``version``, complete and intact (a restarted pod)."""
    if not target.is_dir():
        return None
    try:
        manifest = verify_directory(target)
    except ArtifactError:
        return None
    return manifest if manifest.version == version else None


def embeddable(manifest: Manifest, model_id: str | None) -> str:
    """The model id of ``manifest``'s version once this image can embed queries with its model (and it is
    ``model_id``, when given); else an :class:`ArtifactError` saying why not."""
    config = servable_config(manifest.model, manifest.version)
    if model_id is not None and config.model_id != model_id:
        raise ArtifactError(f"version {manifest.version} was built with model {config.model_id}, not {model_id}")
    return config.model_id


def fetch_index(version: str, repository: str, index_dir: str, model_id: str | None = None,
                retry_s: float = DEFAULT_RETRY_S) -> dict[str, object]:
    if not version:
        raise ArtifactError("no index version to fetch: IMAGESEARCH_INDEX_VERSION is empty "
                            "(the GitOps overlay sets it once the pipeline has deployed a version)")
    check_version(version)
    target = Path(index_dir).absolute()
    manifest = already_there(target, version)
    reused = manifest is not None
    if manifest is not None:
        embeddable(manifest, model_id)
    else:
        repo = open_repository(repository, retry_s=retry_s)
        wanted = embeddable(read_manifest(repo, version), model_id)  # the manifest only: no index file yet
        manifest = fetch(repo, version, target, wanted)
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
