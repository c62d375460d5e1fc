"""The last part of ``make demo``: roll out what git names, show it answering, serve until Ctrl-C.

    python -m localdev.demo [--interval 5]

1. ``LocalDeploy.sync()`` (Argo CD's part, see ``localdev.argocd``): start the server on the version the
   local overlay names, or roll a running one to it with no failed requests;
2. print the served version's evaluation metrics and a sample query's top results: a catalog picture
   re-photographed (resized, cropped, rotated, brightened, JPEG) searched over real HTTP;
3. print the web page's URL and keep watching git (a rollback or a new bump is rolled in) until Ctrl-C,
   which stops the server. If another ``make demo`` is already serving, this one only rolls and reports.
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path
from typing import Any

import httpx
from PIL import Image

from imagesearch import gitops
from imagesearch.augment import near_duplicate
from imagesearch.settings import DATA_DIR, get_settings
from localdev.argocd import LocalDeploy

SAMPLE_ITEM = "tux-food-fruit-apple_red"


def say(text: str = "") -> None:
    print(text, flush=True)


def show_index(url: str) -> dict[str, Any]:
    info = httpx.get(f"{url}/v1/index", timeout=30).json()
    say(f"\nServing index {info['version']}: {info['item_count']} items, {info['index_kind']} ScaNN, "
        f"model {info['model_id']}")
    for name, value in sorted(info["metrics"].items()):
        say(f"  {name:<26} {value:g}")
    return info


def show_sample_query(url: str) -> None:
    catalog_image = httpx.get(f"{url}/v1/items/{SAMPLE_ITEM}/image", timeout=30)
    if catalog_image.status_code != 200:
        say(f"\n(sample item {SAMPLE_ITEM} is not in this index; skipping the sample query)")
        return
    photo = near_duplicate(Image.open(io.BytesIO(catalog_image.content)))
    answer = httpx.post(f"{url}/v1/search", params={"k": 5}, content=photo, headers={"Content-Type": "image/jpeg"}, timeout=60)
    answer.raise_for_status()
    body = answer.json()
    say(f"\nSample query: a re-photographed picture of {SAMPLE_ITEM} (JPEG, {len(photo):,} bytes), "
        f"answered in {body['timing']['total_ms']:.0f} ms:")
    for rank, hit in enumerate(body["results"], start=1):
        say(f"  {rank}. {hit['score']:.3f}  {hit['item_id']:<40} {hit['title'][:40]:<40} {hit['price']:>7.2f}")
    say(f"\ncurl -s -H 'Content-Type: image/jpeg' --data-binary @photo.jpg '{url}/v1/search?k=5'")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--interval", type=float, default=5.0, help="seconds between git polls while serving")
    parser.add_argument("--state-dir", type=Path, default=DATA_DIR / "serving")
    parser.add_argument("--no-wait", action="store_true", help="report and leave the server running in the background")
    args = parser.parse_args(argv)
    settings = get_settings()
    config = gitops.GitOpsConfig.from_settings(settings)
    deployer = LocalDeploy(config, args.state_dir, settings.serving.host, settings.serving.port)
    summary = deployer.sync()
    if summary["action"] == "none":
        say(f"Nothing to serve: {summary['reason']}")
        return 1
    say(f"Local deploy: {summary['action']} version {summary['version']} ({summary['url']})")
    show_index(summary["url"])
    show_sample_query(summary["url"])
    say(f"\nWeb page: {summary['url']}/     OpenAPI: {summary['url']}/schema/openapi.json")
    if args.no_wait or deployer.running_watch() is not None:
        say("The server keeps running; stop it with: python -m localdev.argocd --stop")
        return 0
    say("Serving and watching git (rollouts and rollbacks are rolled in). Ctrl-C stops the server.")
    try:
        deployer.watch(args.interval)
    except KeyboardInterrupt:
        say("\nStopping the server.")
    finally:
        deployer.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
