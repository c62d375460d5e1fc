"""tasks.assembly: the version's vectors in item order, reused rows copied from the previous version as stored."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

from imagesearch.index_store import STORED_DTYPE, StoredVectors, write_vectors
from tasks.assembly import Assembly, vector_chunks


def test_vector_chunks_interleave_reused_and_new_rows(tmp_path: Path) -> None:
    previous = np.arange(12, dtype=np.float32).reshape(6, 2)
    write_vectors(tmp_path / "embeddings.npy", iter([previous.astype(STORED_DTYPE)]), previous.shape)
    fresh = np.full((2, 2), -1.0, np.float32)
    assembly = Assembly(pa.table({"item_id": ["a", "b", "c", "d"]}), np.array([5, -1, 1, -1]), np.array([-1, 0, -1, 1]),
                        fresh, None, "")
    chunks = list(vector_chunks(assembly, StoredVectors(tmp_path / "embeddings.npy"), 2))
    assert np.concatenate(chunks).astype(np.float32).tolist() == [[10, 11], [-1, -1], [2, 3], [-1, -1]]
