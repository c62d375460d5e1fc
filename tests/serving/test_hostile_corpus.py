"""The hostile corpus (tests/serving/hostile_corpus.py) against ``python -m serving.app`` over real HTTP: every
format Pillow opens is exercised; accepted formats decode or get 422, every other one gets 415 before it decodes;
never a 5xx; and the pipeline's preprocess step refuses and accepts exactly the same."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from PIL import Image

from imagesearch.errors import ImageError, NotAnImageError
from imagesearch.preprocess import PreprocessConfig, fitted_pixels
from imagesearch.settings import Settings
from tests.serving.conftest import ServerProcess, start_server
from tests.serving.hostile_corpus import REFUSED, Sample, corpus, identified
from tests.serving.hostile_inputs import HttpRequest, send

pytestmark = pytest.mark.slow

SETTINGS = Settings.from_env({})
QUICK_SIDE = 64  # the format x mode sweep small; containers and bombs keep their in-cap maximum sizes


@pytest.fixture(scope="module")
def samples() -> list[Sample]:
    return corpus(SETTINGS.serving.query_max_image_pixels, SETTINGS.serving.max_upload_bytes, QUICK_SIDE)


@pytest.fixture(scope="module")
def corpus_server(index_a: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    folder = tmp_path_factory.mktemp("corpus-server")
    shutil.copytree(index_a, folder / "index")
    server = start_server(folder / "index", folder / "server.log")
    yield server
    server.stop()


def test_the_corpus_exercises_every_format_pillow_opens(samples: list[Sample]) -> None:
    Image.init()
    exercised = {identified(sample.data) for sample in samples}
    assert set(Image.OPEN) - exercised == set()
    assert {sample.expected for sample in samples} >= {REFUSED} and any(sample.decodes for sample in samples)


def test_every_sample_gets_its_documented_answer(samples: list[Sample], corpus_server: ServerProcess) -> None:
    parts = urlsplit(corpus_server.url)
    host, port = parts.hostname or "", parts.port or 0
    wrong = []
    for sample in samples:
        answer = send(host, port, HttpRequest(path="/v1/search?k=1", headers={"Content-Type": "image/png"},
                                              body=sample.data), 120)
        if answer.status not in sample.expected or not answer.headers["content-type"].startswith("application/json"):
            wrong.append(f"{sample.name}: {answer.status} {answer.body[:200]!r}")
        elif sample.expected == REFUSED and answer.json()["error"] != "image_not_an_image":
            wrong.append(f"{sample.name}: refused as {answer.json()['error']}")
    assert wrong == []
    assert send(host, port, HttpRequest(method="GET", path="/readyz")).status == 200
    metrics = send(host, port, HttpRequest(method="GET", path="/metrics")).body.decode()
    assert 'status="5' not in metrics and "imagesearch_query_memory_reserved_bytes 0.0" in metrics
    assert "Traceback" not in corpus_server.log.read_text()


def test_the_pipeline_preprocess_accepts_and_refuses_the_same(samples: list[Sample]) -> None:
    """tasks/preprocess.py decodes catalog images with ``fitted_pixels``: the same decoder, with the catalog's caps."""
    config = PreprocessConfig().for_pipeline(SETTINGS)
    wrong = []
    for sample in samples:
        try:
            fitted_pixels(sample.data, config)
            outcome = "decoded"
        except ImageError as exc:
            outcome = type(exc).__name__
        if (sample.expected == REFUSED and outcome != NotAnImageError.__name__) or (sample.decodes and outcome != "decoded"):
            wrong.append(f"{sample.name}: {outcome}")
    assert wrong == []
