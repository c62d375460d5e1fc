"""Serving fixtures: one embedder, the published index fetched like the initContainer does, a second
version derived from it (to swap between), clients for the in-process app and a real server process."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import msgspec
import numpy as np
import pytest
import uvicorn
from litestar import Litestar
from litestar.testing import TestClient

from imagesearch.artifacts import COMMIT, MANIFEST, Manifest, commit_local, fetch, seal
from imagesearch.embedder import Embedder
from imagesearch.index import VectorIndex, choose_params
from imagesearch.index_store import (
    EMBEDDINGS,
    ITEMS,
    SEARCH_SPACE,
    projection_record,
    read_items,
    search_space,
    write_items,
    write_search_space,
)
from imagesearch.projection import LEGACY_WHITENING, PROJECTION, IdentityProjection, PcaWhitening, Projection
from imagesearch.repository import open_repository
from imagesearch.settings import ServingSettings, Settings
from serving.app import create_app
from tests.conftest import ROOT
from tests.serving.browser import launch_chromium

if TYPE_CHECKING:
    from playwright.sync_api import Browser

ADMIN_TOKEN = "test-admin-token"
DERIVED_VERSION = "20260102T000000Z"
# Version B drops these photos (and their mirrored twins), so old and new answers are easy to tell apart.
DROPPED_IN_B = ("coffee", "chelsea", "rocket")


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    return Embedder()


@pytest.fixture(scope="session")
def index_a(published_repository: tuple[Path, str], tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Path:
    """The published version, fetched and verified into a local directory (what the initContainer does)."""
    repository, version = published_repository
    target = tmp_path_factory.mktemp("fetched") / version
    fetch(open_repository(str(repository)), version, target, embedder.model_id)
    return target


def small_whitening(vectors: np.ndarray, dims: int) -> PcaWhitening:
    """PCA-whitening of a few vectors by a thin SVD: ``PcaWhitening.fit`` eigendecomposes the full 1280x1280
    covariance, which takes seconds here, and the server only needs *a* whitening to project queries with."""
    vectors = np.asarray(vectors, dtype=np.float32)  # stored as float16
    mean = vectors.mean(axis=0)
    _, singular, axes = np.linalg.svd(vectors - mean, full_matrices=False)
    return PcaWhitening(mean=mean.astype(np.float32), weight=(axes[:dims].T / singular[:dims]).astype(np.float32))


def derive_version(
    source: Path,
    target: Path,
    version: str,
    keep: list[int],
    image_uris: dict[str, str] | None = None,
    model_id: str = "",
    projection: Projection | None = None,
    legacy_whitening: bool = False,
) -> Path:
    """A sealed, committed version holding the ``keep`` rows of ``source`` (optionally other image URIs or model,
    or with ``projection``: stored and recorded as build_index does, or with ``legacy_whitening`` as a
    ``whitening.npz`` beside no record, as versions published before projections)."""
    target.mkdir(parents=True)
    items = read_items(source / ITEMS)
    records = [{name: items[name][row] for name in items} for row in keep]
    for record in records:
        record["image_uri"] = (image_uris or {}).get(record["item_id"], record["image_uri"])
    embeddings = np.load(source / EMBEDDINGS)[keep]
    write_items(target / ITEMS, records)
    np.save(target / EMBEDDINGS, embeddings, allow_pickle=False)
    params = choose_params(len(keep))
    index: dict[str, object] = {"params": params.to_dict()}
    if projection is not None and legacy_whitening:
        arrays = projection.arrays()
        np.savez(target / LEGACY_WHITENING, mean=arrays["mean"], projection=arrays["weight"])
    elif projection is not None:
        (target / PROJECTION).write_bytes(projection.to_bytes())
        index["projection"] = projection_record(target, projection)
    space = search_space(embeddings, projection or IdentityProjection(embeddings.shape[1]))
    write_search_space(target / SEARCH_SPACE, space)  # as build_index writes it
    VectorIndex.build(space, params).save(target)
    manifest = Manifest.decode((source / MANIFEST).read_bytes())
    model = msgspec.structs.replace(manifest.model, model_id=model_id or manifest.model.model_id)
    derived = msgspec.structs.replace(
        manifest, version=version, item_count=len(keep), index=index, model=model
    )
    seal(target, derived)
    commit_local(target)
    return target


@pytest.fixture(scope="session")
def index_b(index_a: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    ids = read_items(index_a / ITEMS)["item_id"]
    keep = [row for row, item_id in enumerate(ids) if item_id.removesuffix("-mirror") not in DROPPED_IN_B]
    return derive_version(index_a, tmp_path_factory.mktemp("derived") / DERIVED_VERSION, DERIVED_VERSION, keep)


@pytest.fixture()
def index_dir(index_a: Path, tmp_path: Path) -> Path:
    """A private copy of version A, as a server's index directory: ``<index root>/<version>``, the only shape
    the admin swap loads (the index root being the folder that holds it)."""
    target = tmp_path / "indexes" / index_a.name
    shutil.copytree(index_a, target)
    return target


@pytest.fixture()
def index_b_beside(index_dir: Path, index_b: Path) -> Path:
    """A copy of version B in the same index root as ``index_dir``, ready to be swapped in."""
    target = index_dir.parent / index_b.name
    shutil.copytree(index_b, target)
    return target


def corrupt_copy(source: Path, target: Path) -> Path:
    shutil.copytree(source, target)
    with (target / EMBEDDINGS).open("r+b") as handle:
        handle.seek(-4, os.SEEK_END)
        handle.write(b"\x00\x01\x02\x03")
    return target


def uncommitted_copy(source: Path, target: Path) -> Path:
    shutil.copytree(source, target)
    (target / COMMIT).unlink()
    return target


def serving_settings(index_dir: Path, **overrides: object) -> Settings:
    return Settings.from_env({}, serving=ServingSettings(index_dir=str(index_dir), admin_token=ADMIN_TOKEN, **overrides))


@pytest.fixture(scope="module")
def client(index_a: Path, embedder: Embedder) -> Iterator[TestClient]:
    """The app over version A, shared by a module's read-only tests."""
    with TestClient(create_app(serving_settings(index_a), embedder)) as test_client:
        yield test_client


def admin_headers(token: str = ADMIN_TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def swap(client: TestClient, directory: Path | str, token: str = ADMIN_TOKEN):  # type: ignore[no-untyped-def]
    """``POST /admin/index`` of ``directory``."""
    return client.post("/admin/index", json={"directory": str(directory)}, headers=admin_headers(token))


# ----------------------------------------------------------------------------- a real server process


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])



class SlowEmbedder:
    """The real embedder, ``delay`` seconds slower per batch: keeps requests in flight long enough to fill a server."""

    def __init__(self, embedder: Embedder, delay: float) -> None:
        self.embedder, self.delay = embedder, delay
        self.model_id, self.config = embedder.model_id, embedder.config

    def embed_arrays(self, batch: np.ndarray) -> np.ndarray:
        time.sleep(self.delay)
        return self.embedder.embed_arrays(batch)

@contextmanager
def serve_in_thread(app: Litestar) -> Iterator[str]:
    """The app under uvicorn on a loopback port in this process: real HTTP concurrency without a new process."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=free_port(), log_level="warning"))
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 60
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the in-process server did not start")
            time.sleep(0.05)
        yield f"http://127.0.0.1:{server.config.port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@dataclass
class ServerProcess:
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def start_server(
    index_dir: Path, log: Path, env: dict[str, str] | None = None, timeout_s: float = 120, ready: bool = True
) -> ServerProcess:
    """``python -m serving.app`` on a free loopback port, waited for until /readyz (or, unready, /healthz) answers 200."""
    port = free_port()
    environ = {
        **os.environ, "PYTHONPATH": str(ROOT), "IMAGESEARCH_INDEX_DIR": str(index_dir), "IMAGESEARCH_HOST": "127.0.0.1",
        "IMAGESEARCH_PORT": str(port), "IMAGESEARCH_ADMIN_TOKEN": ADMIN_TOKEN, **(env or {}),
    }
    with log.open("wb") as sink:
        command = [sys.executable, "-m", "serving.app"]
        process = subprocess.Popen(command, cwd=ROOT, env=environ, stdout=sink, stderr=subprocess.STDOUT)
    server = ServerProcess(f"http://127.0.0.1:{port}", process, log)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{server.url}/{'readyz' if ready else 'healthz'}", timeout=2).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        time.sleep(0.25)
    server.stop()
    raise RuntimeError(f"the server was not ready within {timeout_s:g}s:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's Chromium (skips where it is not installed), shared by a module's browser tests.

    Per module, not per session: Playwright's sync API keeps an event loop running in the main thread while it
    is open, and later tests that start their own loop (``anyio.run``) would fail."""
    yield from launch_chromium()


@pytest.fixture(scope="session")
def live_server(index_a: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One real server for the slow tests (HTTP, schemathesis, browser), over a private copy of version A."""
    folder = tmp_path_factory.mktemp("live-server")
    index_dir = folder / "index"
    shutil.copytree(index_a, index_dir)
    server = start_server(index_dir, folder / "server.log")
    yield server
    server.stop()
