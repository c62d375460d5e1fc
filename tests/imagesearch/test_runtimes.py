"""The embedder's runtimes: OpenVINO's vectors stay within 1e-3 cosine of torch's on real photos, at every batch
size; a runtime that drifts further is refused; the converter never loads OpenVINO's telemetry; unknown names are
refused by the settings and by build_runner."""

from __future__ import annotations

import importlib.metadata
import logging
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from imagesearch.backbones import DEFAULT_BACKBONE, registered
from imagesearch.embedder import Embedder
from imagesearch.model import PooledFeatures, fold_batch_norms, load_backbone
from imagesearch.runtimes import (
    CONVERTED,
    MAX_COSINE_DEVIATION,
    TELEMETRY_STUB,
    BatchRunner,
    ConversionCache,
    build_runner,
    check_agreement,
    cosine_deviation,
    torch_runner,
)
from imagesearch.settings import Settings, SettingsError, default_openvino_cache_dir
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


@pytest.fixture(scope="module")
def gem_module() -> PooledFeatures:
    return PooledFeatures(fold_batch_norms(load_backbone(registered(DEFAULT_BACKBONE))), "gem", 3.0)


def cached_runner(module: torch.nn.Module, root: Path, caplog: pytest.LogCaptureFixture) -> tuple[BatchRunner, int]:
    """(an OpenVINO runner of ``module`` with its cache under ``root``, how many conversions building it took)."""
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="imagesearch.runtimes"):
        runner = build_runner(module, 224, "openvino", device=CPU, cache=ConversionCache(root, "gem-test"))
    return runner, sum(record.msg == CONVERTED for record in caplog.records)


def probe(runner: BatchRunner) -> np.ndarray:
    return runner(np.random.default_rng(7).standard_normal((3, 3, 224, 224), dtype=np.float32))


def test_a_second_build_reads_the_cached_model(gem_module: PooledFeatures, tmp_path: Path,
                                               caplog: pytest.LogCaptureFixture) -> None:
    first, conversions = cached_runner(gem_module, tmp_path, caplog)
    assert conversions == 1
    (entry,) = tmp_path.iterdir()
    assert sorted(path.name for path in entry.iterdir()) == ["model.bin", "model.xml"]
    second, conversions = cached_runner(gem_module, tmp_path, caplog)
    assert conversions == 0
    assert np.array_equal(probe(first), probe(second))
    assert cosine_deviation(probe(torch_runner(gem_module, CPU)), probe(second)) <= MAX_COSINE_DEVIATION


def test_the_cache_key_names_the_network_and_the_input_size(tmp_path: Path) -> None:
    from imagesearch.runtimes import openvino_without_telemetry

    ov = openvino_without_telemetry()
    entries = {ConversionCache(tmp_path, network).entry(ov, size) for network in ("a", "b") for size in (224, 240)}
    assert len(entries) == 4 and all(entry.parent == tmp_path for entry in entries)


@pytest.mark.parametrize("damage", ["truncated weights", "garbled graph", "another network"])
def test_a_damaged_or_stale_cache_entry_is_replaced(gem_module: PooledFeatures, tmp_path: Path,
                                                    caplog: pytest.LogCaptureFixture, damage: str) -> None:
    if damage == "another network":  # a well-formed model of another function under this key: the probe catches it
        average = PooledFeatures(gem_module.network, "avg", 3.0)
        cached_runner(average, tmp_path, caplog)
    else:
        cached_runner(gem_module, tmp_path, caplog)
        (entry,) = tmp_path.iterdir()
        if damage == "truncated weights":
            weights = entry / "model.bin"
            weights.write_bytes(weights.read_bytes()[:1000])
        else:
            (entry / "model.xml").write_text("<net><layers><layer id='0' type=")
    runner, conversions = cached_runner(gem_module, tmp_path, caplog)
    assert conversions == 1
    assert any(record.levelno == logging.WARNING and "discarding the cached OpenVINO model" in record.getMessage()
               for record in caplog.records)
    assert cosine_deviation(probe(torch_runner(gem_module, CPU)), probe(runner)) <= MAX_COSINE_DEVIATION
    repaired, conversions = cached_runner(gem_module, tmp_path, caplog)
    assert conversions == 0 and np.array_equal(probe(runner), probe(repaired))


def test_without_a_cache_nothing_is_written(gem_module: PooledFeatures, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("IMAGESEARCH_OPENVINO_CACHE_DIR", "")
    assert Settings.from_env().pipeline.openvino_cache_dir == ""
    embedder = Embedder(device="cpu", runtime="openvino")
    assert embedder.embed_arrays(probe_inputs()).shape == (1, 1280)
    assert list(tmp_path.iterdir()) == []


def probe_inputs() -> np.ndarray:
    return np.random.default_rng(3).standard_normal((1, 3, 224, 224), dtype=np.float32)


def test_an_unwritable_cache_only_logs(gem_module: PooledFeatures, tmp_path: Path,
                                       caplog: pytest.LogCaptureFixture) -> None:
    blocked = tmp_path / "a-file"  # not a folder: no process can create the cache there (root included)
    blocked.write_text("")
    runner, conversions = cached_runner(gem_module, blocked, caplog)
    assert conversions == 1
    assert any("is not writable" in record.getMessage() for record in caplog.records)
    assert cosine_deviation(probe(torch_runner(gem_module, CPU)), probe(runner)) <= MAX_COSINE_DEVIATION


def test_the_cache_folder_defaults_to_the_users_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert Settings.from_env({}).pipeline.openvino_cache_dir == default_openvino_cache_dir()
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_openvino_cache_dir() == str(tmp_path / "imagesearch" / "openvino")
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_openvino_cache_dir() == str(tmp_path / "home" / ".cache" / "imagesearch" / "openvino")
    assert Settings.from_env({"IMAGESEARCH_OPENVINO_CACHE_DIR": ""}).pipeline.openvino_cache_dir == ""


def test_the_loser_of_a_race_keeps_the_winners_entry(gem_module: PooledFeatures, tmp_path: Path,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    from imagesearch.runtimes import converted_model, openvino_without_telemetry

    ov = openvino_without_telemetry()
    cache = ConversionCache(tmp_path, "gem-test")
    entry = cache.entry(ov, 224)
    cached_runner(gem_module, tmp_path, caplog)  # the winner's entry
    winners = (entry / "model.bin").stat().st_mtime_ns
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="imagesearch.runtimes"):
        ConversionCache.write(ov, converted_model(ov, gem_module, 224), entry)  # a second process, finishing later
    assert not [record for record in caplog.records if record.levelno >= logging.WARNING]
    assert [path.name for path in tmp_path.iterdir()] == [entry.name]  # its staging folder is gone
    assert (entry / "model.bin").stat().st_mtime_ns == winners
    _, conversions = cached_runner(gem_module, tmp_path, caplog)
    assert conversions == 0
