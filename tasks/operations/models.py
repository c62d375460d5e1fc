"""Model versions by hand: list them, pin one, lift the pin, roll back to an earlier one.

    python -m tasks.operations.models list [--json]                        every model version, and which one runs use
    python -m tasks.operations.models pin VERSION --reason TEXT            index runs project with VERSION (or none)
    python -m tasks.operations.models unpin                                runs choose the newest gated version again
    python -m tasks.operations.models rollback [--to VERSION] --reason T   pin the previous (or a named) gated version,
                                                                           and mark the current one reverted

Common flag: --repository URI (default: IMAGESEARCH_MODEL_REPOSITORY). The pin and the reverted versions live beside
the model versions (``models/pins/``, see imagesearch/model_versions.py); index runs read them when they choose their
model (the run's ``model_version`` param and IMAGESEARCH_MODEL_VERSION still win). A reverted version is never
chosen automatically again. The next index run rebuilds its search space from the stored raw vectors with the
chosen model: nothing is fetched or embedded again.
"""

from __future__ import annotations

import argparse
import json
import sys

from imagesearch import model_versions
from imagesearch.embedder_config import EmbedderConfig
from imagesearch.errors import ImageSearchError
from imagesearch.pins import Pin, Reverted, now, operator
from imagesearch.repository import ModelRepository, open_model_repository
from imagesearch.settings import Settings
from tasks.operations import command_settings, run_command


def current(repo: ModelRepository, settings: Settings) -> model_versions.ModelChoice:
    """The version index runs with no model_version param would use now."""
    return model_versions.choose(repo, EmbedderConfig.for_settings(settings).model_id,
                                 setting=settings.pipeline.model_version)


def show(args: argparse.Namespace, repo: ModelRepository, settings: Settings) -> None:
    chosen = current(repo, settings)
    pin, reverted = model_versions.read_pin(repo), model_versions.read_reverted(repo)
    rows = [{**model_versions.summary(manifest), "reverted": manifest.version in reverted,
             "chosen": manifest.version == chosen.version} for manifest in model_versions.versions(repo)]
    if args.json:
        print(json.dumps({"versions": rows, "chosen": chosen.version, "reason": chosen.reason,
                          "pin": None if pin is None else pin.version}, indent=2))
        return
    for row in rows:
        marks = "".join((" <- chosen" if row["chosen"] else "", " (reverted)" if row["reverted"] else "",
                         "" if row["passed_gate"] else " (failed its gate)"))
        metrics = ", ".join(f"{name} {value:.3f}" for name, value in sorted(row["metrics"].items()))
        print(f"{row['version']}  {row['backbone']}  {metrics}{marks}")
    print(f"index runs use: {chosen.describe()}")


def pin_version(args: argparse.Namespace, repo: ModelRepository, settings: Settings) -> None:
    if args.version != model_versions.NO_MODEL:
        model_versions.usable(repo, args.version, EmbedderConfig.for_settings(settings).model_id)
    model_versions.write_pin(repo, Pin(args.version, args.reason, args.by or operator(), now()))
    print(f"pinned model version {args.version}; the next index run projects with it")


def unpin(args: argparse.Namespace, repo: ModelRepository, settings: Settings) -> None:
    model_versions.remove_pin(repo)
    print(f"pin lifted; index runs use {current(repo, settings).describe()}")


def roll_back(args: argparse.Namespace, repo: ModelRepository, settings: Settings) -> None:
    model_id = EmbedderConfig.for_settings(settings).model_id
    chosen = current(repo, settings).version
    if chosen is None:
        raise ImageSearchError("no model version is in use: nothing to roll back")
    reverted = model_versions.read_reverted(repo)
    if args.to:
        target = model_versions.usable(repo, args.to, model_id).version
    else:
        earlier = [manifest.version for manifest in model_versions.versions(repo)
                   if manifest.version < chosen and manifest.passed_gate and manifest.model.model_id == model_id
                   and manifest.version not in reverted]
        if not earlier:
            raise ImageSearchError(f"no gated model version before {chosen} to roll back to (pin `none` for no head)")
        target = earlier[-1]
    if target == chosen:
        raise ImageSearchError(f"model version {chosen} is already the one in use")
    by = args.by or operator()
    model_versions.add_reverted(repo, [Reverted(chosen, args.reason, by, now())], restored=target)
    model_versions.write_pin(repo, Pin(target, args.reason, by, now()))
    print(f"rolled back from model version {chosen} to {target} (pinned; {chosen} marked reverted); the next index "
          "run rebuilds its search space with it from the stored vectors")


def build_parser(settings: Settings) -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--repository", help=f"model repository (default {settings.storage.model_repository})")
    parser = argparse.ArgumentParser(prog="python -m tasks.operations.models", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    list_parser = commands.add_parser("list", parents=[common], help="model versions, oldest first")
    list_parser.add_argument("--json", action="store_true")
    list_parser.set_defaults(handler=show)
    pin_parser = commands.add_parser("pin", parents=[common], help="index runs project with VERSION")
    pin_parser.add_argument("version", help=f"a committed model version, or {model_versions.NO_MODEL} (no head)")
    pin_parser.add_argument("--reason", required=True, help="why: recorded in the pin")
    pin_parser.add_argument("--by", help="who decided (default: this login@host)")
    pin_parser.set_defaults(handler=pin_version)
    unpin_parser = commands.add_parser("unpin", parents=[common], help="lift the pin")
    unpin_parser.set_defaults(handler=unpin)
    rollback_parser = commands.add_parser("rollback", parents=[common], help="pin the previous gated version")
    rollback_parser.add_argument("--to", help="the version to return to (default: the gated one before the current)")
    rollback_parser.add_argument("--reason", required=True, help="why: recorded in the pin and the reverted list")
    rollback_parser.add_argument("--by", help="who decided (default: this login@host)")
    rollback_parser.set_defaults(handler=roll_back)
    return parser


def main(argv: list[str] | None = None) -> int:
    if (settings := command_settings("models")) is None:
        return 1
    args = build_parser(settings).parse_args(argv)
    return run_command(args.command, lambda: args.handler(args, open_model_repository(settings, args.repository), settings))

if __name__ == "__main__":
    sys.exit(main())
