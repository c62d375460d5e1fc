"""The whole loop as a user meets it: two DAG runs with a catalog change in between, each rolled out
through git to a running server under a steady client, then a rollback."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from PIL import Image

from imagesearch.catalog import CatalogItem, serialize_catalog
from imagesearch.gitops import GitOpsConfig, Overlay, history
from tests.conftest import ROOT, catalog_items, jpeg_bytes, photo, png_bytes
from tests.dags.airflow_support import dags_test, pipeline_env, run_conf
from tests.gitops.support import clone
from tests.serving.support import Client, cli

pytestmark = pytest.mark.slow
REMOVED = ("retina", "retina-mirror")
REPLACED = "coffee"


def grey(name: str) -> Image.Image:
    from skimage import data

    return Image.fromarray(getattr(data, name)()).convert("RGB")


def changed_catalog(source: Path, folder: Path) -> Path:
    """The photo catalog minus two items, plus two new ones, with the coffee picture replaced by the moon."""
    shutil.copytree(source.parent, folder)
    items = [item for item in catalog_items(source) if item.item_id not in REMOVED]
    template = items[0]
    for name in ("horse", "page"):
        (folder / f"{name}.png").write_bytes(png_bytes(grey(name)))
        items.append(CatalogItem(name, f"{name}.png", name, "new", 5.0, False, template.updated_at))
    (folder / f"{REPLACED}.png").write_bytes(png_bytes(grey("moon")))
    items = [CatalogItem(**{**item.__dict__, "image_uri": Path(item.image_uri).name}) for item in items]
    catalog = folder / "catalog.csv"
    catalog.write_bytes(serialize_catalog(items, "csv"))
    return catalog


@pytest.fixture
def loop_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), **pipeline_env(tmp_path)}
    yield env
    cli(env, "localdev.argocd", "--state-dir", str(tmp_path / "serving"), "--stop")


def search(url: str, image: bytes, k: int = 10) -> list[str]:
    answer = httpx.post(f"{url}/v1/search", params={"k": k}, content=image, headers={"Content-Type": "image/jpeg"}, timeout=60)
    answer.raise_for_status()
    return [hit["item_id"] for hit in answer.json()["results"]]


def test_catalog_change_rolls_out_without_failed_requests_and_rolls_back(
    tmp_path: Path, photo_catalog: Path, loop_env: dict[str, str]
) -> None:
    home = tmp_path / "airflow"
    deploy = ("localdev.argocd", "--state-dir", str(tmp_path / "serving"), "--port", "0")

    first = dags_test(home, loop_env, run_conf(photo_catalog))
    assert first.returncode == 0, first.stderr[-4000:]
    started = json.loads(cli(loop_env, *deploy))
    v1, url = str(started["version"]), str(started["url"])
    client = Client(url)
    client.start()
    client.wait_for(v1)
    assert "retina" in search(url, jpeg_bytes(photo("retina")))

    second = dags_test(home, loop_env, run_conf(changed_catalog(photo_catalog, tmp_path / "catalog-v2")))
    assert second.returncode == 0, second.stderr[-4000:]
    assert '"reused": ' in second.stdout + second.stderr  # the embed step reports what it reused
    rolled = json.loads(cli(loop_env, *deploy))
    v2 = str(rolled["version"])
    assert (rolled["action"], rolled["previous"]) == ("rolled", v1) and v2 > v1
    client.wait_for(v2)

    found = search(url, jpeg_bytes(photo("retina")), k=20)
    assert not set(REMOVED) & set(found)
    assert httpx.get(f"{url}/v1/items/retina/similar").status_code == 404
    assert search(url, jpeg_bytes(grey("moon").rotate(3, fillcolor="white")))[0] == REPLACED
    assert search(url, jpeg_bytes(grey("horse")))[0] == "horse"

    cli(loop_env, "tasks.operations.rollback", "rollback", "--reason", "v2 dropped items")
    back = json.loads(cli(loop_env, *deploy))
    assert (back["action"], back["version"]) == ("rolled", v1)
    client.wait_for(v1)
    assert "retina" in search(url, jpeg_bytes(photo("retina")))

    assert client.stop() == [v1, v2, v1]
    assert client.failures == []
    config = GitOpsConfig(url=loop_env["IMAGESEARCH_GITOPS_REPO_URL"])
    releases = history(Overlay(clone(config, tmp_path / "clone")))
    assert [release.version for release in releases][:3] == [v1, v2, v1]  # newest first
