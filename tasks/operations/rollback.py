"""The GitOps repo by hand: create the local one, list what was deployed, roll back and pin, unpin.

    python -m tasks.operations.rollback init [--model-repository URI]          create the local bare repo from gitops/
    python -m tasks.operations.rollback history [--limit N] [--json]           deploys, rollbacks, pins, newest first
    python -m tasks.operations.rollback rollback [--to VERSION] --reason TEXT  revert to the previous (or a named) version, pinned
    python -m tasks.operations.rollback unpin [--deploy-latest | --deploy V]   lift the pin (alias: release)

Common flags: --gitops-repo URL, --branch NAME, --overlay PATH (defaults: IMAGESEARCH_GITOPS_*).
A rollback reverts the bump commit(s) after the target version and, in the same commit, pins the overlay
(pin.yaml beside its kustomization: version, reason, who, when) and records the reverted versions. While
pinned, every bump (the DAG's deploy task, which then ends as skipped) leaves the overlay alone; a reverted
version is never deployed again automatically. ``unpin --deploy-latest`` also deploys the newest committed
version that passed its gate and was not reverted; ``--deploy V`` deploys V, even a reverted one (a
person's decision). History is never rewritten and nothing is force-pushed.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

import yaml

from imagesearch import gitops
from imagesearch.artifacts import committed_versions, read_manifest
from imagesearch.repository import ModelRepository, open_model_repository
from imagesearch.settings import Settings
from tasks.operations import command_settings, run_command


def application_for(root: Path, overlay: str) -> dict[str, Any] | None:
    """The Argo CD Application in ``gitops/apps`` whose source is ``overlay``, if any."""
    for path in sorted((root / "gitops" / "apps").glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc.get("kind") == "Application" and \
                    doc.get("spec", {}).get("source", {}).get("path", "").strip("/") == overlay.strip("/"):
                return doc
    return None


def describe_sync(root: Path, config: gitops.GitOpsConfig, result: gitops.Result) -> str:
    """What Argo CD (or the local deploy) will do with ``result`` — for humans, after a bump or rollback."""
    if not result.changed:
        return f"{config.overlay} already names index {result.version or result.previous}: nothing for Argo CD to do."
    if result.version == result.previous or not result.version:
        return f"{config.overlay} still names index {result.previous}: nothing for Argo CD to roll."
    rollout = (f"the ConfigMap named in the pod template now says IMAGESEARCH_INDEX_VERSION={result.version}, so "
               f"the Deployment rolls (maxUnavailable 0): new pods fetch and verify {result.version} in their "
               f"fetch-index initContainer and take traffic once /readyz passes; pods serving "
               f"{result.previous or 'nothing'} stop only then.")
    app = application_for(root, config.overlay)
    if app is None:
        lines = [f"No Argo CD Application points at {config.overlay}; {rollout}"]
    elif app["spec"].get("syncPolicy", {}).get("automated") is not None:
        lines = [f"Argo CD syncs {app['metadata']['name']} automatically at its next poll: {rollout}"]
    else:
        name = app["metadata"]["name"]
        lines = [f"Argo CD will show {name} OutOfSync and waits for `argocd app sync {name}`; then {rollout}"]
    if config.environment == "local":
        lines.append("On one machine: `python -m localdev.argocd` (or a running `--watch`) rolls the local server.")
    return "\n".join(lines)


def init(args: argparse.Namespace, config: gitops.GitOpsConfig, settings: Settings) -> None:
    model_repository = args.model_repository or settings.storage.model_repository
    created = gitops.bootstrap(config, Path(args.source), model_repository)
    state = "created from " + args.source if created else "already exists; left as it is"
    print(f"GitOps repo {config.url} (branch {config.branch}): {state}")


def show_history(args: argparse.Namespace, config: gitops.GitOpsConfig, settings: Settings) -> None:
    with gitops.checkout(config) as target:
        target.sync()
        releases = gitops.history(gitops.Overlay(target))[: args.limit or None]
    if args.json:
        print(json.dumps([asdict(release) for release in releases], indent=2))
        return
    if not releases:
        print(f"{config.overlay}: no index version deployed yet")
    for position, release in enumerate(releases):
        marker = "*" if position == 0 else " "
        print(f"{marker} {release.version or '(none)':<26} {release.action:<9} {release.commit[:12]}  {release.date}  "
              f"{release.author}: {release.subject}")
        if release.pin:
            print(f"{'':<30}{release.pin}")
    with gitops.checkout(config) as target:
        target.sync()
        overlay = gitops.Overlay(target)
        pin, reverted = overlay.pin(), overlay.reverted()
    print(f"\n{config.overlay} is {pin.describe() if pin else 'not pinned'}")
    for entry in reverted.values():
        print(f"reverted: {entry.describe()}")


def _report(args: argparse.Namespace, config: gitops.GitOpsConfig, result: gitops.Result, workdir: Path,
            done: str) -> None:
    plan = describe_sync(workdir, config, result)
    if args.json:
        print(json.dumps({**result.summary(), "argo_cd": plan}, indent=2))
        return
    if result.changed:
        print(done)
    print(plan)


def roll_back(args: argparse.Namespace, config: gitops.GitOpsConfig, settings: Settings) -> None:
    repository = None if args.no_check else open_model_repository(settings, args.repository)
    decision = gitops.Decision(args.reason, *([args.by] if args.by else []))
    with tempfile.TemporaryDirectory(prefix="gitops-rollback-") as scratch:
        workdir = Path(scratch) / "repo"
        result = gitops.rollback(config, args.to, repository, decision=decision, workdir=workdir)
        reverts = f" reverts {', '.join(sha[:12] for sha in result.reverted)} and" if result.reverted else ""
        _report(args, config, result, workdir,
                f"Rolled {config.overlay} back from {result.previous} to {result.version}: commit {result.commit}"
                f"{reverts} pins {result.version} ({decision.reason}); runs will not deploy until "
                "`python -m tasks.operations.rollback unpin`")


def latest_deployable(repository: ModelRepository, reverted: set[str]) -> str:
    """The newest committed version that passed its quality gate and was never reverted."""
    for version in reversed(committed_versions(repository)):
        if version not in reverted and read_manifest(repository, version).passed_gate:
            return version
    raise gitops.GitOpsError(f"no committed version in {repository.uri} passed its gate without being reverted")


def release_pin(args: argparse.Namespace, config: gitops.GitOpsConfig, settings: Settings) -> None:
    repository = open_model_repository(settings, args.repository)
    decision = gitops.Decision(args.reason, *([args.by] if args.by else []))
    deploy = args.deploy
    if args.deploy_latest:
        with gitops.checkout(config) as target:
            target.sync()
            reverted = set(gitops.Overlay(target).reverted())
        deploy = latest_deployable(repository, reverted)
    with tempfile.TemporaryDirectory(prefix="gitops-unpin-") as scratch:
        workdir = Path(scratch) / "repo"
        result = gitops.unpin(config, decision, deploy=deploy, repository=repository, workdir=workdir)
        deployed = f" and deploys {result.version}" if deploy and result.version != result.previous else ""
        _report(args, config, result, workdir, f"{config.overlay}: commit {result.commit} lifts the pin{deployed}; "
                "the next run deploys again")


def build_parser(settings: Settings) -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--gitops-repo", help=gitops.repo_option_help(settings))
    common.add_argument("--branch", help=f"branch (default {settings.gitops.branch})")
    common.add_argument("--overlay", help=f"overlay path in the repo (default {settings.gitops.overlay})")
    parser = argparse.ArgumentParser(prog="python -m tasks.operations.rollback", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    init_parser = commands.add_parser("init", parents=[common], help="create the local bare GitOps repo (idempotent)")
    init_parser.add_argument("--source", default=str(gitops.SOURCE_DIR), help="the gitops/ folder to start from")
    init_parser.add_argument("--model-repository", help="written into the overlay (default from settings)")
    init_parser.set_defaults(handler=init)
    history_parser = commands.add_parser("history", parents=[common], help="deployed versions, newest first")
    history_parser.add_argument("--limit", type=int, default=20, help="at most this many (0: all)")
    history_parser.add_argument("--json", action="store_true")
    history_parser.set_defaults(handler=show_history)
    rollback_parser = commands.add_parser("rollback", parents=[common], help="git revert back to an earlier version")
    rollback_parser.add_argument("--to", help="the version to return to (default: the one before the current)")
    rollback_parser.add_argument("--repository", help="model repository that must hold it (default from settings)")
    rollback_parser.add_argument("--no-check", action="store_true", help="skip the model repository check")
    rollback_parser.add_argument("--reason", required=True, help="why: recorded in the pin, logged by skipped runs")
    rollback_parser.add_argument("--by", help="who decided (default: this login@host)")
    rollback_parser.add_argument("--json", action="store_true")
    rollback_parser.set_defaults(handler=roll_back)
    unpin_parser = commands.add_parser("unpin", aliases=["release"], parents=[common],
                                       help="lift the pin: later runs deploy again")
    which = unpin_parser.add_mutually_exclusive_group()
    which.add_argument("--deploy-latest", action="store_true",
                       help="also deploy the newest committed version that passed its gate and was not reverted")
    which.add_argument("--deploy", metavar="VERSION", help="also deploy VERSION (even a reverted one: your decision)")
    unpin_parser.add_argument("--reason", default="pin lifted", help="why (recorded in the commit)")
    unpin_parser.add_argument("--by", help="who decided (default: this login@host)")
    unpin_parser.add_argument("--repository", help="model repository holding the version to deploy (default from settings)")
    unpin_parser.add_argument("--json", action="store_true")
    unpin_parser.set_defaults(handler=release_pin)
    return parser


def main(argv: list[str] | None = None) -> int:
    if (settings := command_settings("rollback")) is None:
        return 1
    args = build_parser(settings).parse_args(argv)
    config = gitops.GitOpsConfig.from_settings(settings, url=args.gitops_repo, branch=args.branch, overlay=args.overlay)
    return run_command(args.command, lambda: args.handler(args, config, settings))


if __name__ == "__main__":
    sys.exit(main())
