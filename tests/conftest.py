"""Shared fixtures: real photos from scikit-image, a small real catalog, and a real published index."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from PIL import Image, ImageOps

from imagesearch.catalog import CatalogItem, read_catalog, serialize_catalog
from imagesearch.input_policy import InputPolicy
from imagesearch.settings import Settings, get_settings

ROOT = Path(__file__).resolve().parent.parent
pytest_plugins = ["tests.git_http_server"]  # the git_http_server fixture: a real git server over HTTP on loopback
# Tests write catalogs and images into pytest's temporary folders: the input policy must allow them there (the
# defaults allow only data/, which tests/security checks). Set before anything reads settings; subprocesses inherit.
for _setting in ("IMAGESEARCH_CATALOG_PREFIXES", "IMAGESEARCH_IMAGE_LOCAL_ROOTS"):
    os.environ.setdefault(_setting, f"{ROOT / 'data'},{tempfile.gettempdir()}")
# The GitOps repo of a developer's `make demo` (data/gitops.git) must not reach a test: a run's snapshot and evaluate
# read what it serves. Tests see no repo there, as on a clean clone; those that need one name theirs.
os.environ.setdefault("IMAGESEARCH_GITOPS_REPO_URL", str(Path(tempfile.mkdtemp(prefix="no-gitops-")) / "absent.git"))
# One OpenVINO conversion cache for the whole session: the first embedder converts, every later one (the pipeline's
# subprocess steps, servers) reads it. Never the developer's own cache, so each session converts once from scratch;
# removed when the session ends (pytest_sessionfinish) unless the caller named one.
SESSION_OPENVINO_CACHE = None
if "IMAGESEARCH_OPENVINO_CACHE_DIR" not in os.environ:
    SESSION_OPENVINO_CACHE = os.environ["IMAGESEARCH_OPENVINO_CACHE_DIR"] = tempfile.mkdtemp(prefix="openvino-cache-")
# Colour photos bundled with scikit-image, grouped into made-up marketplace categories.
PHOTOS = {
    "coffee": "kitchen", "chelsea": "pets", "astronaut": "space", "rocket": "space", "hubble_deep_field": "space",
    "immunohistochemistry": "science", "retina": "science", "camera": "people", "logo": "art",
    "colorwheel": "art",
}


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if SESSION_OPENVINO_CACHE:
        shutil.rmtree(SESSION_OPENVINO_CACHE, ignore_errors=True)


def photo(name: str) -> Image.Image:
    from skimage import data

    return Image.fromarray(getattr(data, name)()).convert("RGB")


def catalog_policy() -> InputPolicy:
    """The input policy the steps read catalogs under in this test process (tmp folders allowed, see above)."""
    return InputPolicy.for_catalogs(Settings.from_env().inputs)


def catalog_items(path: Path | str) -> list[CatalogItem]:
    return read_catalog(str(path), catalog_policy()).items


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def jpeg_bytes(image: Image.Image, quality: int = 90) -> bytes:
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def write_photo_catalog(folder: Path, fmt: str = "csv") -> Path:
    """~20 items: each photo plus a mirrored copy, written as PNG files next to the catalog."""
    folder.mkdir(parents=True, exist_ok=True)
    items = []
    for number, (name, category) in enumerate(sorted(PHOTOS.items())):
        picture = photo(name)
        for variant, image in (("", picture), ("-mirror", ImageOps.mirror(picture))):
            item_id = f"{name}{variant}"
            (folder / f"{item_id}.png").write_bytes(png_bytes(image))
            items.append(
                CatalogItem(
                    item_id=item_id, image_uri=f"{item_id}.png", title=f"{name.replace('_', ' ')}{variant}",
                    category=category, price=10.0 + number, on_sale=number % 2 == 0,
                    updated_at=datetime(2026, 1, 1, tzinfo=UTC),
                )
            )
    catalog = folder / f"catalog.{fmt}"
    catalog.write_bytes(serialize_catalog(items, fmt))
    return catalog


def run_pipeline(
    catalog: Path, repository: Path | str, *extra: str, env: dict[str, str] | None = None, timeout: float = 900
) -> subprocess.CompletedProcess[str]:
    """The whole chain as subprocesses, exactly as ``tasks.operations.run_all`` runs it locally; no GitOps commit unless
    ``extra`` says ``--deploy``."""
    environ = {**os.environ, "PYTHONPATH": str(ROOT), "IMAGESEARCH_MIN_NEAR_DUPLICATE_TOP1": "0.5", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "tasks.operations.run_all", "--catalog", str(catalog), "--repository", str(repository),
         "--no-deploy", *extra],
        cwd=ROOT, env=environ, capture_output=True, text=True, timeout=timeout,
    )


@pytest.fixture(scope="session")
def photo_catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_photo_catalog(tmp_path_factory.mktemp("catalog"))


@pytest.fixture(scope="session")
def published_repository(tmp_path_factory: pytest.TempPathFactory, photo_catalog: Path) -> tuple[Path, str]:
    """(model repository folder, committed version) built once by the real pipeline."""
    repository = tmp_path_factory.mktemp("model-repository")
    result = run_pipeline(photo_catalog, repository, "--version", "20260101T000000Z")
    assert result.returncode == 0, result.stderr[-3000:]
    return repository, "20260101T000000Z"


SECOND_VERSION = "20260102T000000Z"


@pytest.fixture(scope="session")
def two_versions(published_repository: tuple[Path, str], photo_catalog: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model repository with two committed versions and their run workspaces, both from the real pipeline
    (the second incremental). Tests that add to it remove what they added."""
    target = tmp_path_factory.mktemp("two-versions") / "models"
    shutil.copytree(published_repository[0], target)
    result = run_pipeline(photo_catalog, target, "--version", SECOND_VERSION)
    assert result.returncode == 0, result.stderr[-3000:]
    return target


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, timeout: float = 30.0) -> None:
    import socket
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


@pytest.fixture(scope="session")
def gcs_emulator() -> Iterator[str]:
    """A real GCS emulator (gcp-storage-emulator) on a free loopback port; yields STORAGE_EMULATOR_HOST."""
    port = free_port()
    process = subprocess.Popen(
        [Path(sys.executable).parent / "gcp-storage-emulator", "start", "--host=127.0.0.1", f"--port={port}", "--in-memory"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    try:
        wait_for_port(port)
        host = f"http://127.0.0.1:{port}"
        previous = os.environ.get("STORAGE_EMULATOR_HOST")
        os.environ["STORAGE_EMULATOR_HOST"] = host
        from imagesearch.gcs import gcs_client

        gcs_client.cache_clear()
        yield host
        gcs_client.cache_clear()
        if previous is None:
            os.environ.pop("STORAGE_EMULATOR_HOST", None)
        else:
            os.environ["STORAGE_EMULATOR_HOST"] = previous
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture
def gcs_bucket(gcs_emulator: str) -> str:
    """A fresh bucket in the emulator; returns its gs:// URI."""
    import uuid

    from imagesearch.gcs import gcs_client

    name = f"test-{uuid.uuid4().hex[:12]}"
    gcs_client().create_bucket(name)
    return f"gs://{name}"


@pytest.fixture(autouse=True)
def settings_read_afresh() -> Iterator[None]:
    """Each test is a process of its own for get_settings(): it sees the environment the test sets."""
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()
