"""The projection of a version: raw backbone vectors -> the search space its index holds and queries are compared in.

Three kinds, one interface (numpy only, so build-index and the server apply a learned head without torch):

    identity        the raw vectors, as unit float32
    pca-whitening   a PCA-whitening learned on the indexed vectors (``PcaWhitening.fit``)
    linear-head     a head learned on the catalog by the training DAG, exported as ``mean`` and ``weight``

Both affine kinds are applied as ``l2_normalize((x - mean) @ weight)``, chunk by chunk in float32 into a
preallocated output. A projection is stored as ``projection.npz`` (its kind and arrays, never a pickle) and named by
``projection_id``, a digest of its kind and arrays: the same head gives the same id wherever it is stored.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

from imagesearch.errors import ArtifactError

PROJECTION = "projection.npz"
LEGACY_WHITENING = "whitening.npz"  # versions published before projections: a PCA-whitening's mean + projection
CHUNK_ROWS = 8_192  # rows projected at a time: an L2-sized float32 block for BLAS, never a full-size temporary
MAX_DIM = 16_384  # the most dimensions either side of a projection: a file claiming more is refused unread
MAX_BYTES = 1 << 30  # the largest projection file read (16,384 x 16,384 float32 weights)


class Projection(ABC):
    """Raw backbone vectors (in_dim) -> float32 unit vectors (out_dim)."""

    kind: ClassVar[str]

    @property
    @abstractmethod
    def in_dim(self) -> int: ...

    @property
    @abstractmethod
    def out_dim(self) -> int: ...

    @abstractmethod
    def arrays(self) -> dict[str, np.ndarray]:
        """What the file stores besides the kind (and what ``projection_id`` digests)."""

    @abstractmethod
    def _project(self, block: np.ndarray, out: np.ndarray) -> None:
        """Write the unnormalised projection of the float32 ``block`` into ``out`` (its rows, out_dim wide)."""

    def apply(self, vectors: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """``vectors`` (n, in_dim) float16 or float32 -> (n, out_dim) float32 unit vectors, written into ``out`` (new
        if None), CHUNK_ROWS rows at a time: no float64 and no temporary of the input's or output's full size."""
        vectors = np.asarray(vectors)
        if vectors.ndim != 2 or vectors.shape[1] != self.in_dim:
            raise ValueError(f"a {self.kind} projection takes (n, {self.in_dim}) vectors, not {vectors.shape}")
        if out is None:
            out = np.empty((len(vectors), self.out_dim), np.float32)
        elif out.shape != (len(vectors), self.out_dim) or out.dtype != np.float32:
            raise ValueError(f"output must be ({len(vectors)}, {self.out_dim}) float32, not {out.shape} {out.dtype}")
        block = np.empty((min(CHUNK_ROWS, len(vectors)), self.in_dim), np.float32)
        for start in range(0, len(vectors), CHUNK_ROWS):
            stop = min(start + CHUNK_ROWS, len(vectors))
            rows, target = block[: stop - start], out[start:stop]
            np.copyto(rows, vectors[start:stop], casting="same_kind")
            self._project(rows, target)
            normalize_rows(target)
        return out

    @property
    def projection_id(self) -> str:
        """``<kind>-<digest>``: the sha256 of the kind and every array's name, dtype, shape and bytes."""
        digest = hashlib.sha256(self.kind.encode())
        for name, array in sorted(self.arrays().items()):
            digest.update(f"\0{name}\0{array.dtype.str}\0{array.shape}\0".encode())
            digest.update(np.ascontiguousarray(array).tobytes())
        return f"{self.kind}-{digest.hexdigest()[:32]}"

    def describe(self) -> dict[str, int | str]:
        """What a manifest records of it (with the file's sha256 beside it)."""
        return {"kind": self.kind, "in_dim": self.in_dim, "out_dim": self.out_dim, "projection_id": self.projection_id}

    def to_bytes(self) -> bytes:
        buffer = io.BytesIO()
        np.savez(buffer, kind=np.array(self.kind), **self.arrays())
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> Projection:
        """Any projection file (checked: see :func:`projection_from_bytes`); a subclass also checks the kind."""
        projection = projection_from_bytes(data)
        if cls is not Projection and not isinstance(projection, cls):
            raise ArtifactError(f"projection file holds a {projection.kind} projection, not a {cls.kind}")
        return projection


def normalize_rows(rows: np.ndarray) -> None:
    """Scale float32 rows to unit length in place (a zero row stays zero)."""
    norms = np.sqrt(np.einsum("ij,ij->i", rows, rows))
    np.maximum(norms, 1e-12, out=norms)
    rows /= norms[:, None]


@dataclass(frozen=True, eq=False)
class IdentityProjection(Projection):
    """The raw vectors themselves (as unit float32): an index too small to learn a whitening on."""

    dim: int
    kind: ClassVar[str] = "identity"

    def __post_init__(self) -> None:
        if not 1 <= self.dim <= MAX_DIM:
            raise ArtifactError(f"identity projection of {self.dim} dimensions: expected 1 to {MAX_DIM}")

    @property
    def in_dim(self) -> int:
        return self.dim

    @property
    def out_dim(self) -> int:
        return self.dim

    def arrays(self) -> dict[str, np.ndarray]:
        return {"dim": np.array(self.dim, np.int64)}

    def _project(self, block: np.ndarray, out: np.ndarray) -> None:
        out[...] = block


@dataclass(frozen=True, eq=False)
class AffineProjection(Projection):
    """``l2_normalize((x - mean) @ weight)``: ``mean`` float32 (in_dim,), ``weight`` float32 (in_dim, out_dim)."""

    mean: np.ndarray
    weight: np.ndarray

    def __post_init__(self) -> None:
        mean, weight = np.asarray(self.mean), np.asarray(self.weight)
        if mean.dtype != np.float32 or weight.dtype != np.float32:
            raise ArtifactError(f"{self.kind}: mean and weight must be float32, not {mean.dtype} and {weight.dtype}")
        if weight.ndim != 2 or mean.shape != (weight.shape[0],) or not all(1 <= n <= MAX_DIM for n in weight.shape):
            raise ArtifactError(f"{self.kind}: mean {mean.shape} and weight {weight.shape} are not (in_dim,) and "
                                f"(in_dim, out_dim) with 1 to {MAX_DIM} dimensions each")
        if not (np.isfinite(mean).all() and np.isfinite(weight).all()):
            raise ArtifactError(f"{self.kind}: mean or weight holds a value that is not finite")
        # Frozen: own C-contiguous, read-only copies, so BLAS gets contiguous operands and nobody mutates them.
        for name, array in (("mean", mean), ("weight", weight)):
            array = np.array(array, dtype=np.float32, order="C")
            array.flags.writeable = False
            object.__setattr__(self, name, array)

    @property
    def in_dim(self) -> int:
        return int(self.weight.shape[0])

    @property
    def out_dim(self) -> int:
        return int(self.weight.shape[1])

    def arrays(self) -> dict[str, np.ndarray]:
        return {"mean": self.mean, "weight": self.weight}

    def _project(self, block: np.ndarray, out: np.ndarray) -> None:
        block -= self.mean
        np.matmul(block, self.weight, out=out)


class PcaWhitening(AffineProjection):
    """PCA-whitening learned on the indexed vectors: principal axes scaled by 1/sqrt(eigenvalue + shrinkage)."""

    kind: ClassVar[str] = "pca-whitening"

    @classmethod
    def fit(cls, vectors: np.ndarray, out_dim: int, shrinkage: float = 0.3, max_samples: int = 200_000,
            seed: int = 0) -> PcaWhitening:
        if len(vectors) > max_samples:
            vectors = vectors[np.sort(np.random.default_rng(seed).choice(len(vectors), max_samples, replace=False))]
        vectors = np.asarray(vectors, dtype=np.float32)  # stored vectors may be float16
        mean = vectors.mean(axis=0)
        centred = (vectors - mean).astype(np.float64)
        covariance = centred.T @ centred / max(len(vectors) - 1, 1)
        eigenvalues, eigenvectors = np.linalg.eigh(covariance)
        order = np.argsort(eigenvalues)[::-1][: min(out_dim, len(vectors) - 1, vectors.shape[1])]
        # Shrinkage (a fraction of the largest eigenvalue) keeps low-variance axes from being blown up into noise.
        scale = 1.0 / np.sqrt(eigenvalues[order] + shrinkage * eigenvalues.max())
        return cls(mean.astype(np.float32), (eigenvectors[:, order] * scale).astype(np.float32))


class LinearHead(AffineProjection):
    """A head learned on the catalog's stored raw vectors (the training DAG exports its ``mean`` and ``weight``)."""

    kind: ClassVar[str] = "linear-head"


KINDS: dict[str, type[Projection]] = {kind.kind: kind for kind in (IdentityProjection, PcaWhitening, LinearHead)}
_MEMBERS = {"identity": {"dim": ((), np.int64)},
            "pca-whitening": {"mean": (1, np.float32), "weight": (2, np.float32)},
            "linear-head": {"mean": (1, np.float32), "weight": (2, np.float32)}}
_LEGACY_MEMBERS = {"mean": (1, np.float32), "projection": (2, np.float32)}


def _headers(archive: zipfile.ZipFile) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """Each member's array shape and dtype, read from its ``.npy`` header alone (nothing is allocated from a claim)."""
    headers = {}
    for member in archive.infolist():
        if not member.filename.endswith(".npy") or "/" in member.filename:
            raise ArtifactError(f"projection file holds {member.filename!r}, not an array")
        with archive.open(member) as handle:
            version = np.lib.format.read_magic(handle)  # type: ignore[arg-type]
            if version not in ((1, 0), (2, 0)):
                raise ArtifactError(f"projection file member {member.filename}: .npy format {version}")
            read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, fortran, dtype = read(handle)  # type: ignore[arg-type]
        if dtype.hasobject or fortran:
            raise ArtifactError(f"projection file member {member.filename} is not a plain array ({dtype})")
        if any(n > MAX_DIM for n in shape) or len(shape) > 2:
            raise ArtifactError(f"projection file member {member.filename} claims shape {shape}: at most "
                                f"{MAX_DIM} per side, 2 axes")
        headers[member.filename.removesuffix(".npy")] = (shape, dtype)
    return headers


def _expect(headers: dict[str, tuple[tuple[int, ...], np.dtype]], members: dict[str, tuple[object, type]],
            what: str) -> None:
    if set(headers) != set(members):
        raise ArtifactError(f"{what} holds {sorted(headers)}, expected {sorted(members)}")
    for name, (axes, dtype) in members.items():
        shape, found = headers[name]
        if found != np.dtype(dtype) or (shape != axes if isinstance(axes, tuple) else len(shape) != axes):
            raise ArtifactError(f"{what}: {name} is {found} {shape}, expected {np.dtype(dtype)} with "
                                f"{axes if isinstance(axes, int) else len(axes)} axes")


def projection_from_bytes(data: bytes) -> Projection:
    """A projection file's projection: its members, dtypes, shapes and values checked; ArtifactError if anything is
    off (never a pickle: ``allow_pickle=False``)."""
    if len(data) > MAX_BYTES:
        raise ArtifactError(f"projection file of {len(data)} bytes is over the {MAX_BYTES}-byte limit")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            headers = _headers(archive)
        if "kind" not in headers or headers["kind"][0] != () or headers["kind"][1].kind != "U":
            raise ArtifactError("projection file records no kind")
        with np.load(io.BytesIO(data), allow_pickle=False) as archive:
            kind = str(archive["kind"])
            if kind not in KINDS:
                raise ArtifactError(f"projection file has unknown kind {kind!r} (known: {', '.join(KINDS)})")
            _expect({name: header for name, header in headers.items() if name != "kind"}, _MEMBERS[kind],
                    f"{kind} projection file")
            arrays = {name: archive[name] for name in _MEMBERS[kind]}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise ArtifactError(f"not a valid projection file ({exc})") from None
    if kind == IdentityProjection.kind:
        return IdentityProjection(int(arrays["dim"]))
    return KINDS[kind](mean=arrays["mean"], weight=arrays["weight"])  # type: ignore[call-arg]


def legacy_whitening_from_bytes(data: bytes) -> PcaWhitening:
    """A ``whitening.npz`` of a version published before projections (``mean``, ``projection``), as PCA-whitening."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            _expect(_headers(archive), _LEGACY_MEMBERS, LEGACY_WHITENING)
        with np.load(io.BytesIO(data), allow_pickle=False) as archive:
            return PcaWhitening(mean=archive["mean"], weight=archive["projection"])
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise ArtifactError(f"not a valid {LEGACY_WHITENING} ({exc})") from None


def read_projection_file(path: Path) -> Projection:
    """The projection stored at ``path``, checked (an error names what is wrong, not the path)."""
    size = path.stat().st_size
    if size > MAX_BYTES:
        raise ArtifactError(f"{size} bytes is over the {MAX_BYTES}-byte limit")
    return projection_from_bytes(path.read_bytes())


def load_projection(path: Path) -> Projection:
    """The projection stored at ``path`` (a ``projection.npz``, e.g. a model version's weights), checked."""
    try:
        return read_projection_file(path)
    except (ArtifactError, OSError) as exc:
        raise ArtifactError(f"{path}: {exc}") from None
