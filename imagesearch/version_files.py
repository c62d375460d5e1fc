"""What an index version may hold: the files the project writes, each of a kind checked before anything opens it.

A version holds code in no form: no pickle (ScaNN's ``load_searcher`` unpickles a ``scann_docids.pkl`` it
finds; the project never writes one), no ``.npy`` of object dtype (``np.load`` would unpickle it), nothing of
a name the project does not write. A manifest naming any other file is refused when it is decoded, so the
fetcher downloads nothing of such a version and the server loads nothing of it; a listed file whose content
is not of its kind is refused when the version is verified, before it is loaded.
"""

from __future__ import annotations

import json
import math
import re
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import numpy as np

from imagesearch.errors import ArtifactError
from imagesearch.projection import read_projection_file

SCANN_ASSETS = "scann/scann_assets.pbtxt"

# The name of every file build-index writes (imagesearch/index_store.py's layout and what ScaNN serializes for a
# brute-force or tree + AH + reorder searcher), and the kind of content each must have.
KINDS: dict[str, str] = {
    "items.parquet": "parquet",
    "embeddings.npy": "npy",
    "search_space.npy": "float16 matrix",
    "samples.npz": "npz",
    "metrics.json": "metrics",  # a model version's evaluation (imagesearch/model_versions.py)
    "projection.npz": "projection",
    "whitening.npz": "npz",  # a version published before projections (read as PCA-whitening)
    SCANN_ASSETS: "scann_assets",
    "scann/scann_config.pb": "protobuf",
    "scann/dataset.npy": "npy",
    "scann/ah_codebook.pb": "protobuf",
    "scann/serialized_partitioner.pb": "protobuf",
    "scann/datapoint_to_token.npy": "npy",
    "scann/hashed_dataset.npy": "npy",
    # A tree + AH index re-ranking in bfloat16 or int8 (IndexParams.reorder_dtype), or with SOAR spilling.
    "scann/bfloat16_dataset.npy": "int16 matrix",  # bfloat16 bits, as ScaNN stores them
    "scann/int8_dataset.npy": "int8 matrix",
    "scann/int8_multipliers.npy": "float32 vector",
    "scann/dp_norms.npy": "float32 vector",
    "scann/hashed_dataset_soar.npy": "uint8 matrix",
}
# The dtype and number of axes of each typed array kind above: anything else is not what ScaNN wrote.
_TYPED_ARRAYS: dict[str, tuple[np.dtype, int]] = {
    "float16 matrix": (np.dtype(np.float16), 2), "int16 matrix": (np.dtype(np.int16), 2), "int8 matrix": (np.dtype(np.int8), 2),
    "uint8 matrix": (np.dtype(np.uint8), 2), "float32 vector": (np.dtype(np.float32), 1),
}
# scann_assets.pbtxt as ScaNN writes it with relative paths: only asset entries naming files beside it.
_ASSET = re.compile(r'assets \{\n  asset_type: [A-Z0-9_]+\n  asset_path: "([a-z0-9_]+\.(?:npy|pb))"\n\}\n')


def check_name(path: str) -> str:
    """``path`` if the project writes a file of that name into a version; else refused."""
    if path not in KINDS:
        what = "a pickle, which" if path.lower().endswith((".pkl", ".pickle")) else "a file"
        raise ArtifactError(f"{path} is {what} the project never writes into a version: the version is refused "
                            f"(a version may hold only {', '.join(sorted(KINDS))})")
    return path


def check_content(directory: Path, path: str) -> None:
    """Refuse ``directory/path`` unless its content is of the kind its name says (cheap checks of headers only)."""
    try:
        _CHECKS[KINDS[check_name(path)]](directory / path)
    except ArtifactError as exc:
        raise ArtifactError(f"{path}: {exc}") from None
    except (OSError, ValueError, zipfile.BadZipFile, UnicodeDecodeError) as exc:
        raise ArtifactError(f"{path}: not a valid {KINDS[path]} file ({exc})") from None


def _npy_header(handle: BinaryIO) -> tuple[tuple[int, ...], np.dtype]:
    """A ``.npy`` header of a plain numeric dtype (an object array would be a pickle): its shape and dtype."""
    version = np.lib.format.read_magic(handle)
    if version == (1, 0):
        shape, _, dtype = np.lib.format.read_array_header_1_0(handle)
    elif version == (2, 0):
        shape, _, dtype = np.lib.format.read_array_header_2_0(handle)
    else:
        raise ArtifactError(f".npy format version {version} is not one the project writes")
    if dtype.hasobject:
        raise ArtifactError(f"holds an array of dtype {dtype}, which would be unpickled: refused")
    return shape, dtype


def _npy(path: Path) -> None:
    with path.open("rb") as handle:
        _npy_header(handle)


def _typed_array(kind: str) -> Callable[[Path], None]:
    """The check of a ``.npy`` of ``kind``: its dtype and number of axes as in ``_TYPED_ARRAYS``."""
    expected_dtype, axes = _TYPED_ARRAYS[kind]

    def check(path: Path) -> None:
        with path.open("rb") as handle:
            shape, dtype = _npy_header(handle)
        if dtype != expected_dtype or len(shape) != axes:
            raise ArtifactError(f"holds a {len(shape)}-d {dtype} array, not a {kind}")

    return check


def _npz(path: Path) -> None:
    with zipfile.ZipFile(path) as archive:
        for member in archive.infolist():
            if not member.filename.endswith(".npy") or "/" in member.filename:
                raise ArtifactError(f"holds {member.filename!r}, not an array")
            with archive.open(member) as handle:
                _npy_header(handle)  # type: ignore[arg-type]


def _parquet(path: Path) -> None:
    with path.open("rb") as handle:
        head = handle.read(4)
        handle.seek(-4, 2)
        if head != b"PAR1" or handle.read(4) != b"PAR1":
            raise ArtifactError("not a Parquet file")


def _scann_assets(path: Path) -> None:
    """Only entries naming allow-listed files in ``scann/``: never an absolute path or a file elsewhere."""
    text = path.read_text("utf-8")
    names = _ASSET.findall(text)
    if not names or _ASSET.sub("", text):
        raise ArtifactError("is not a list of ScaNN assets beside it")
    for name in names:
        check_name(f"scann/{name}")


def _projection(path: Path) -> None:
    """Parsed whole (it is small): its kind known, its arrays of the kind's names, dtypes and shapes, all finite."""
    read_projection_file(path)


def _metrics(path: Path) -> None:
    """A JSON object of finite numbers, at most 1 MiB."""
    if path.stat().st_size > 1 << 20:
        raise ArtifactError("is over 1 MiB")
    values = json.loads(path.read_text("utf-8"))
    if not isinstance(values, dict) or not all(
            isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
            for value in values.values()):
        raise ArtifactError("is not a JSON object of finite numbers")


def _protobuf(path: Path) -> None:
    """Parsed by ScaNN's C++ protobuf reader, which runs no code: nothing to check cheaply."""


_CHECKS: dict[str, Callable[[Path], None]] = {
    "npy": _npy, "npz": _npz, "projection": _projection, "parquet": _parquet, "scann_assets": _scann_assets,
    "protobuf": _protobuf, "metrics": _metrics, **{kind: _typed_array(kind) for kind in _TYPED_ARRAYS},
}
