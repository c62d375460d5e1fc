"""Promote the version one environment serves to another: one commit to the target overlay, never forced.

    python -m tasks.operations.promote --from staging --to production [--repository URI] [--json]

Reads the version the ``--from`` overlay names at the branch tip and, after checking that it is
committed in the model repository (default: the one the target overlay's pods fetch from), that it
passed its quality gate (its manifest's report) and that the target overlay is not pinned and never
reverted it, commits it to the ``--to`` overlay with a message naming the version and its metrics.
Production keeps manual sync in Argo CD: the command says what to sync. ``--from``/``--to`` are
environment names (``gitops/overlays/<name>``) or overlay paths. Common flags: --gitops-repo URL, --branch NAME.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
from pathlib import Path

from imagesearch import gitops, kustomize
from imagesearch.artifacts import is_committed, read_manifest
from imagesearch.errors import ImageSearchError
from imagesearch.repository import DEFAULT_RETRY_S, open_repository
from imagesearch.settings import SettingsError, get_settings
from tasks.operations.rollback import describe_sync

OVERLAYS = "gitops/overlays"


class PromotionRefused(ImageSearchError):
    """A check before promotion failed; the message says which and what to do."""


def overlay_path(name: str) -> str:
    return name.strip("/") if "/" in name else f"{OVERLAYS}/{name}"


def promote(source: gitops.GitOpsConfig, target: gitops.GitOpsConfig, repository_uri: str | None,
            workdir: Path, retry_s: float = DEFAULT_RETRY_S) -> tuple[gitops.Result, dict[str, float]]:
    """Check, then commit the source overlay's version to the target overlay (one commit, plain push)."""
    with gitops.checkout(source, workdir / "source") as checkout:
        checkout.sync()
        version = gitops.Overlay(checkout).version()
        uri = repository_uri or gitops.Overlay.at(target, checkout.path).read_literal(kustomize.REPOSITORY_KEY)
    if not version:
        raise PromotionRefused(f"{source.overlay} names no index version: nothing to promote")
    repository = open_repository(uri, retry_s=retry_s)
    if not is_committed(repository, version):
        raise PromotionRefused(f"index {version} (served by {source.environment}) is not committed in {repository.uri}, "
                               f"the model repository {target.environment} fetches from")
    manifest = read_manifest(repository, version)
    if not manifest.passed_gate:
        raise PromotionRefused(f"index {version} has no passing quality-gate report in its manifest: not promoting it")

    def change(tip: gitops.Overlay) -> gitops.Edit:
        previous = tip.version()
        if reason := gitops.forbidden(tip, version):
            raise PromotionRefused(f"not promoting {version}: {reason}")
        if previous == version:
            return gitops.Edit(previous)
        tip.set_literal(kustomize.VERSION_KEY, version)
        title = f"Promote index {version} from {source.environment} to {target.environment}"
        return gitops.Edit(previous, gitops.bump_message(target, version, previous, manifest.item_count,
                                                         manifest.metrics, title=title, action="promote"))

    with gitops.checkout(target, workdir / "target") as checkout:
        result = gitops.Result.of(target, version, gitops.commit_and_push(checkout, change))
    return result, manifest.metrics


def main(argv: list[str] | None = None) -> int:
    try:
        settings = get_settings()
    except SettingsError as exc:
        print(f"promote: {exc}", file=sys.stderr)
        return 1
    parser = argparse.ArgumentParser(prog="python -m tasks.operations.promote", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--from", dest="source", required=True, help="environment (or overlay) to promote from")
    parser.add_argument("--to", dest="target", required=True, help="environment (or overlay) to promote to")
    parser.add_argument("--repository", help="model repository that must hold the version "
                                             "(default: the target overlay's IMAGESEARCH_MODEL_REPOSITORY)")
    parser.add_argument("--gitops-repo", help=gitops.repo_option_help(settings))
    parser.add_argument("--branch", help=f"branch (default {settings.gitops.branch})")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    base = gitops.GitOpsConfig.from_settings(settings, url=args.gitops_repo, branch=args.branch)
    source = dataclasses.replace(base, overlay=overlay_path(args.source))
    target = dataclasses.replace(base, overlay=overlay_path(args.target))
    if source.overlay == target.overlay:
        print("promote refused: --from and --to name the same overlay", file=sys.stderr)
        return 1
    try:
        with tempfile.TemporaryDirectory(prefix="gitops-promote-") as scratch:
            result, metrics = promote(source, target, args.repository, Path(scratch),
                                       settings.storage.repository_retry_s)
            plan = describe_sync(Path(scratch) / "target", target, result)
    except PromotionRefused as exc:
        print(f"promote refused: {exc}", file=sys.stderr)
        return 1
    except (ImageSearchError, OSError, ValueError) as exc:
        print(f"promote failed: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps({**result.summary(), "metrics": metrics, "argo_cd": plan}, indent=2))
    else:
        if result.changed:
            print(f"Promoted index {result.version} from {source.environment} to {target.environment} "
                  f"(was {result.previous or 'none'}): commit {result.commit}")
        print(plan)
    return 0


if __name__ == "__main__":
    sys.exit(main())
