"""Where the embedder's network runs: eager torch, or OpenVINO on the CPU (``IMAGESEARCH_EMBEDDER_RUNTIME``).

OpenVINO runs the same float32 function faster on this CPU (bench/embed.py, docs/BENCHMARKS.md). Its
model is converted from the torch module at start-up (traced once), or read from the conversion cache
(``IMAGESEARCH_OPENVINO_CACHE_DIR``) where an earlier process saved it, then compiled for the CPU with float32
inference forced, so that a CPU with bfloat16 units does not quietly trade
precision for speed. Every converted model is checked against torch on a probe batch before it is used: vectors
further than :data:`MAX_COSINE_DEVIATION` from torch's would be another model's (a new model id, a full rebuild),
so such a runner is refused, never served. A cached model that fails to load or to agree is deleted and
converted afresh.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, get_args

import numpy as np
import torch
from torch import nn

from imagesearch.settings import Runtime
from imagesearch.vectors import l2_normalize

RUNTIMES: tuple[str, ...] = get_args(Runtime)
# 1 - cosine between a runtime's vector and torch's, at most; the project's bound for "the same model".
MAX_COSINE_DEVIATION = 1e-3
PROBE_SEED = 20261208
TELEMETRY_STUB = "openvino.tools.ovc.telemetry_stub"
MODEL_XML = "model.xml"
# Part of every cache key: raise it when what converted_model produces changes.
CACHE_FORMAT = 1
CONVERTED = "converted the network to OpenVINO in %.1f s"

# (N, 3, S, S) float32 model inputs -> (N, dim) float32 pooled features.
BatchRunner = Callable[[np.ndarray], np.ndarray]

log = logging.getLogger(__name__)


def to_device_tensor(batch: np.ndarray, device: torch.device) -> torch.Tensor:
    """The batch as float32 on ``device``; channels-last on the CPU (the layout the CPU network is kept in)."""
    tensor = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32)).to(device)
    return tensor.contiguous(memory_format=torch.channels_last) if device.type == "cpu" else tensor


def torch_runner(module: nn.Module, device: torch.device) -> BatchRunner:
    def run(batch: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return module(to_device_tensor(batch, device)).float().cpu().numpy()  # type: ignore[no-any-return]

    return run


def openvino_without_telemetry() -> ModuleType:
    """``openvino``, its model converter using its own no-op telemetry stub. Otherwise ``openvino.convert_model``
    sends usage events to a remote collector unless the user opted out in ``~/intel/openvino_telemetry``; with the
    ``openvino_telemetry`` package unimportable (None in ``sys.modules``) the converter falls back to the stub,
    whatever the home folder holds. Checked: if the converter was already imported with the real package, this
    refuses rather than phone home."""
    if "openvino.tools.ovc" not in sys.modules:
        sys.modules["openvino_telemetry"] = None  # type: ignore[assignment]
    import openvino
    from openvino.tools.ovc import convert_impl, telemetry_utils

    for module in (convert_impl, telemetry_utils):
        if module.tm.__name__ != TELEMETRY_STUB:
            raise RuntimeError(f"{module.__name__} was imported with OpenVINO's telemetry enabled: build the "
                               "OpenVINO runner before anything else in this process imports openvino")
    return openvino


def converted_model(ov: ModuleType, module: nn.Module, input_size: int) -> Any:
    """The module traced and converted to an OpenVINO model with a dynamic batch (the slow part of start-up)."""
    example = torch.zeros(1, 3, input_size, input_size)
    module = module.eval().requires_grad_(False)
    began = time.perf_counter()
    with torch.no_grad(), warnings.catch_warnings():
        # The tracer warns that SamePad2d's pads become constants: they are, for the one input size converted.
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        # It also says torch.jit.trace is deprecated; OpenVINO's torch.export path took 2.7x as long to convert here.
        warnings.filterwarnings("ignore", "`torch.jit.trace", FutureWarning)
        # torch.jit.trace's check_trace would trace twice more (two thirds of the conversion's time); the probe
        # comparison in build_runner checks the result instead.
        traced = torch.jit.trace(module, example, check_trace=False, strict=False)
        model = ov.convert_model(traced, example_input=example,
                                 input=[ov.PartialShape([-1, 3, input_size, input_size])])
    log.info(CONVERTED, time.perf_counter() - began)
    return model


def compiled_runner(ov: ModuleType, model: Any, threads: int) -> BatchRunner:
    """An OpenVINO model compiled for the CPU: float32, one stream, ``threads`` (0: all cores)."""
    config: dict[str, object] = {"INFERENCE_PRECISION_HINT": "f32", "PERFORMANCE_HINT": "LATENCY"}
    if threads > 0:
        config["INFERENCE_NUM_THREADS"] = threads
    compiled = ov.Core().compile_model(model, "CPU", config)
    request = compiled.create_infer_request()
    lock = threading.Lock()  # one infer request, reused: its output buffer is copied out before the next call

    def run(batch: np.ndarray) -> np.ndarray:
        with lock:
            request.infer({0: np.ascontiguousarray(batch, dtype=np.float32)})
            return np.array(request.get_output_tensor(0).data, dtype=np.float32, copy=True)

    return run


@dataclass(frozen=True)
class ConversionCache:
    """Converted models on disk under ``root``, one folder per network (``network_id``: what identifies the weights
    and pooling), input size and OpenVINO and torch versions. A folder appears whole or not at all: it is written
    beside its final name, then renamed."""

    root: Path
    network_id: str

    def entry(self, ov: ModuleType, input_size: int) -> Path:
        identity = json.dumps({"network": self.network_id, "input_size": input_size, "format": CACHE_FORMAT,
                               "openvino": ov.__version__, "torch": torch.__version__}, sort_keys=True)
        return self.root / hashlib.sha256(identity.encode()).hexdigest()

    @staticmethod
    def read(ov: ModuleType, entry: Path) -> Any | None:
        """The cached model, or None where there is none (an unreadable one raises: the caller discards it)."""
        return ov.Core().read_model(entry / MODEL_XML) if (entry / MODEL_XML).is_file() else None

    @staticmethod
    def discard(entry: Path) -> None:
        shutil.rmtree(entry, ignore_errors=True)

    @staticmethod
    def write(ov: ModuleType, model: Any, entry: Path) -> None:
        """``model`` saved as ``entry``, float32 as converted. Another process's entry already there wins; a folder
        that cannot be written only logs."""
        try:
            entry.parent.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(prefix=f".{entry.name}.", dir=entry.parent))
        except OSError as error:
            log.warning("the OpenVINO model cache %s is not writable (%s): converting again next start",
                        entry.parent, error)
            return
        try:
            ov.save_model(model, staging / MODEL_XML, compress_to_fp16=False)
            staging.rename(entry)
            log.info("saved the converted OpenVINO model to %s", entry)
        except (OSError, RuntimeError) as error:  # RuntimeError: OpenVINO's own (a full disk, say)
            if not (entry / MODEL_XML).is_file():
                log.warning("could not save the converted OpenVINO model to %s: %s", entry, error)
        finally:
            shutil.rmtree(staging, ignore_errors=True)


def openvino_runner(ov: ModuleType, module: nn.Module, input_size: int, threads: int, reference: BatchRunner,
                    cache: ConversionCache | None) -> tuple[BatchRunner, float]:
    """(runner, its probe deviation from ``reference``): the cached model where one loads and agrees with torch,
    else the module converted afresh (and cached once it agrees)."""
    entry = cache.entry(ov, input_size) if cache else None
    if entry is not None:
        try:
            cached = ConversionCache.read(ov, entry)
            if cached is not None:
                runner = compiled_runner(ov, cached, threads)
                return runner, check_agreement(reference, runner, input_size, "cached openvino")
        except Exception as error:  # whatever is wrong with the file, a fresh conversion replaces it
            log.warning("discarding the cached OpenVINO model %s (%s): converting afresh", entry, error)
            ConversionCache.discard(entry)
    model = converted_model(ov, module, input_size)
    runner = compiled_runner(ov, model, threads)
    deviation = check_agreement(reference, runner, input_size, "openvino")
    if entry is not None:
        ConversionCache.write(ov, model, entry)
    return runner, deviation


def cosine_deviation(reference: np.ndarray, candidate: np.ndarray) -> float:
    """The largest 1 - cosine between corresponding rows."""
    return float(np.max(1.0 - np.sum(l2_normalize(reference) * l2_normalize(candidate), axis=1)))


def check_agreement(reference: BatchRunner, candidate: BatchRunner, input_size: int, name: str) -> float:
    """``candidate``'s deviation from ``reference`` on a seeded probe batch; ValueError beyond the bound."""
    probe = np.random.default_rng(PROBE_SEED).standard_normal((2, 3, input_size, input_size), dtype=np.float32)
    deviation = cosine_deviation(reference(probe), candidate(probe))
    if not deviation <= MAX_COSINE_DEVIATION:
        raise ValueError(f"the {name} runtime's vectors differ from torch's by {deviation:.3g} cosine (at most "
                         f"{MAX_COSINE_DEVIATION:g} keeps the model id): refusing it")
    return deviation


def build_runner(module: nn.Module, input_size: int, runtime: Runtime, threads: int = 0,
                 device: torch.device | None = None, cache: ConversionCache | None = None) -> BatchRunner:
    """A runner of ``module`` (on ``device``, default the CPU) with ``runtime``. OpenVINO runs on the CPU only: on
    another device the module runs in torch there. ``cache``: where converted OpenVINO models are kept (None:
    converted in memory). Unknown runtime: ValueError."""
    if runtime not in RUNTIMES:
        raise ValueError(f"unknown embedder runtime {runtime!r}: one of {', '.join(RUNTIMES)}")
    device = device or torch.device("cpu")
    reference = torch_runner(module, device)
    if runtime == "torch":
        return reference
    if device.type != "cpu":
        log.info("embedder runtime %s runs on the CPU only: the network runs in torch on %s", runtime, device)
        return reference
    began = time.perf_counter()
    runner, deviation = openvino_runner(openvino_without_telemetry(), module, input_size, threads, reference, cache)
    log.info("embedder runtime %s ready in %.1f s (%.2g cosine from torch on the probe)", runtime,
             time.perf_counter() - began, deviation)
    return runner
