"""PCA-whitening learned on the indexed vectors and applied to the index and to every query."""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np

from imagesearch.vectors import l2_normalize


@dataclass(frozen=True)
class Whitening:
    mean: np.ndarray  # (dim,)
    projection: np.ndarray  # (dim, out_dim): principal axes scaled by 1/sqrt(eigenvalue)

    @classmethod
    def fit(
        cls, vectors: np.ndarray, out_dim: int, shrinkage: float = 0.3, max_samples: int = 200_000, seed: int = 0
    ) -> Whitening:
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

    @property
    def out_dim(self) -> int:
        return self.projection.shape[1]

    def apply(self, vectors: np.ndarray) -> np.ndarray:
        return l2_normalize((vectors - self.mean) @ self.projection)

    def to_bytes(self) -> bytes:
        buffer = io.BytesIO()
        np.savez(buffer, mean=self.mean, projection=self.projection)
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> Whitening:
        with np.load(io.BytesIO(data), allow_pickle=False) as archive:
            return cls(archive["mean"], archive["projection"])
