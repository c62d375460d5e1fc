"""The embedder's runtimes: OpenVINO's vectors stay within 1e-3 cosine of torch's on real photos, at every batch
size; a runtime that drifts further is refused; the converter never loads OpenVINO's telemetry; unknown names are
refused by the settings and by build_runner."""

from __future__ import annotations

import importlib.metadata
import re
import subprocess
import sys

import numpy as np
import pytest
import torch

from imagesearch.backbones import DEFAULT_BACKBONE, registered
from imagesearch.embedder import Embedder
from imagesearch.model import PooledFeatures, fold_batch_norms, load_backbone
from imagesearch.runtimes import (
    MAX_COSINE_DEVIATION,
    TELEMETRY_STUB,
    build_runner,
    check_agreement,
    cosine_deviation,
    torch_runner,
)
from imagesearch.settings import Settings, SettingsError
from tests.conftest import PHOTOS, ROOT, jpeg_bytes, photo

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def embedders() -> tuple[Embedder, Embedder]:
    return Embedder(device="cpu", runtime="torch"), Embedder(device="cpu", runtime="openvino")


@pytest.fixture(scope="module")
def photo_inputs(embedders: tuple[Embedder, Embedder]) -> np.ndarray:
    reference, _ = embedders
    return np.stack([reference.preprocess(jpeg_bytes(photo(name))) for name in PHOTOS])


@pytest.mark.parametrize("batch_size", [1, 3, len(PHOTOS)])
def test_openvino_vectors_are_torchs_within_the_bound(embedders: tuple[Embedder, Embedder], photo_inputs: np.ndarray,
                                                      batch_size: int) -> None:
    reference, openvino = embedders
    assert (reference.runtime, openvino.runtime) == ("torch", "openvino")
    assert openvino.model_id == reference.model_id
    batch = photo_inputs[:batch_size]
    expected, got = reference.embed_arrays(batch), openvino.embed_arrays(batch)
    assert got.shape == expected.shape == (batch_size, 1280) and got.dtype == np.float32
    assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    assert cosine_deviation(expected, got) <= MAX_COSINE_DEVIATION


def test_openvino_tells_the_photos_apart_as_torch_does(embedders: tuple[Embedder, Embedder],
                                                       photo_inputs: np.ndarray) -> None:
    reference, openvino = embedders
    expected, got = reference.embed_arrays(photo_inputs), openvino.embed_arrays(photo_inputs)
    assert np.array_equal(np.argsort(-(got @ got.T), axis=1), np.argsort(-(expected @ expected.T), axis=1))


def test_a_runner_whose_vectors_drift_is_refused() -> None:
    network = fold_batch_norms(load_backbone(registered(DEFAULT_BACKBONE)))
    gem = torch_runner(PooledFeatures(network, "gem", 3.0), CPU)
    average = torch_runner(PooledFeatures(network, "avg", 3.0), CPU)
    assert check_agreement(gem, gem, 224, "torch") < 1e-6
    with pytest.raises(ValueError, match=r"differ from torch's by .* cosine .*refusing it"):
        check_agreement(gem, average, 224, "avg")


def test_the_converter_runs_without_openvino_telemetry(embedders: tuple[Embedder, Embedder]) -> None:
    from openvino.tools.ovc import convert_impl, telemetry_utils

    assert sys.modules["openvino_telemetry"] is None
    assert convert_impl.tm.__name__ == telemetry_utils.tm.__name__ == TELEMETRY_STUB


def test_the_torch_runtime_never_imports_openvino() -> None:
    code = ("import sys; from imagesearch.embedder import Embedder; Embedder(device='cpu', runtime='torch'); "
            "print(sorted(name for name in sys.modules if name.startswith('openvino')))")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_an_unknown_runtime_is_refused_by_the_settings() -> None:
    assert Settings.from_env({}).pipeline.embedder_runtime == "openvino"
    assert Settings.from_env({"IMAGESEARCH_EMBEDDER_RUNTIME": "torch"}).pipeline.embedder_runtime == "torch"
    with pytest.raises(SettingsError, match=r"^IMAGESEARCH_EMBEDDER_RUNTIME='onnx' is not valid: .*'torch' or 'openvino'"):
        Settings.from_env({"IMAGESEARCH_EMBEDDER_RUNTIME": "onnx"})


def test_an_unknown_runtime_is_refused_by_build_runner() -> None:
    module = torch.nn.Identity()
    with pytest.raises(ValueError, match="unknown embedder runtime 'onnx': one of torch, openvino"):
        build_runner(module, 224, "onnx", device=CPU)  # type: ignore[arg-type]


@pytest.mark.parametrize("package", ["openvino", "openvino-telemetry"])
def test_openvino_is_pinned_and_installed_at_its_pin(package: str) -> None:
    pins = dict(re.findall(r"^([\w.-]+)==(\S+)", (ROOT / "requirements.txt").read_text(), re.M))
    assert importlib.metadata.version(package) == pins[package]
