"""A run workspace: a prefix in the model repository (local or gs://) that the steps share.

    snapshot/run.json             version, catalog uri, snapshot hash, model, shard count, previous version,
                                  whether nothing changed
    snapshot/items.parquet        every item of the version, with its row in the previous version (-1: new or
                                  changed, it is in a shard)
    snapshot/errors.jsonl         catalog rows rejected, with line and reason
    shards/<i>/items.jsonl        the new or changed items of work shard i
    preprocess/<i>/pixels.npz     uint8 (n, S, S, 3) fitted images of items to embed
    preprocess/<i>/items.jsonl    per item: image_sha256 and status (embed / reuse: same bytes as before)
    preprocess/<i>/failures.jsonl per failed item: reason and message
    preprocess/<i>/failed.json    per failed item: the image stamp seen when it was fetched
    embed/<i>/embeddings.npy      (n, dim) float32 for the shard's items with status embed, in items order
    index/...                     the version directory (see imagesearch.index_store)
    evaluate/metrics.json, gate.json   the candidate's metrics; the gate's report (vs the serving version)
    publish/committed.json        written once the version is committed: the workspace is read-only from then on
"""

from __future__ import annotations

import contextlib
import io
import json
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from imagesearch.errors import VersionTakenError
from imagesearch.repository import ModelRepository, open_repository

COMMITTED = "publish/committed.json"
PLAN = "snapshot/items.parquet"


class Workspace:
    def __init__(self, uri: str) -> None:
        self.uri = uri
        self.store: ModelRepository = open_repository(uri)
        self._writable = False

    def check_writable(self, key: str) -> None:
        """A committed version's workspace is never rewritten (its files are what was published)."""
        if not self._writable:
            if self.store.exists(COMMITTED):
                raise VersionTakenError(
                    f"refusing to write {key}: the version of workspace {self.uri} is already committed and immutable; "
                    "re-run as a new version")
            self._writable = True

    def put_bytes(self, key: str, data: bytes) -> None:
        self.check_writable(key)
        self.store.put_bytes(key, data)

    def mark_committed(self, record: dict[str, Any]) -> None:
        self.store.put_bytes(COMMITTED, json.dumps(record, indent=2, sort_keys=True).encode())

    def exists(self, key: str) -> bool:
        return self.store.exists(key)

    def write_json(self, key: str, value: Any) -> None:
        self.put_bytes(key, json.dumps(value, indent=2, sort_keys=True).encode())

    def read_json(self, key: str) -> Any:
        return json.loads(self.store.get_bytes(key))

    def write_jsonl(self, key: str, records: Iterable[dict[str, Any]]) -> None:
        self.put_bytes(key, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode())

    def read_jsonl(self, key: str) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.store.get_bytes(key).decode().splitlines() if line.strip()]

    def write_array(self, key: str, array: np.ndarray, compressed: bool = False) -> None:
        buffer = io.BytesIO()
        if compressed:
            np.savez_compressed(buffer, array=array)
        else:
            np.save(buffer, array, allow_pickle=False)
        self.put_bytes(key, buffer.getvalue())

    def read_array(self, key: str) -> np.ndarray:
        data = io.BytesIO(self.store.get_bytes(key))
        if key.endswith(".npz"):
            with np.load(data, allow_pickle=False) as archive:
                return archive["array"]
        return np.load(data, allow_pickle=False)

    def upload_dir(self, prefix: str, directory: Path) -> None:
        for path in sorted(p for p in directory.rglob("*") if p.is_file()):
            self.check_writable(prefix)
            self.store.put_file(f"{prefix}/{path.relative_to(directory).as_posix()}", path)

    def download_dir(self, prefix: str, directory: Path) -> Path:
        keys = self.store.list_keys(prefix)
        for key in keys:
            self.store.get_file(key, directory / key[len(prefix) + 1 :])
        return directory

    @contextlib.contextmanager
    def directory(self, prefix: str) -> Iterator[Path]:
        """The files under ``prefix`` as a folder: in place when the workspace is local, else a downloaded copy."""
        keys = self.store.list_keys(prefix)
        local = self.store.local_file(keys[0]) if keys else None
        if local is not None:
            yield local.parents[len(Path(keys[0][len(prefix) + 1 :]).parts) - 1]
            return
        with tempfile.TemporaryDirectory(prefix="imagesearch-") as scratch:
            yield self.download_dir(prefix, Path(scratch))

    def scratch(self) -> tempfile.TemporaryDirectory[str]:
        return tempfile.TemporaryDirectory(prefix="imagesearch-")

    # Shared run facts written by ``snapshot``.
    def run_info(self) -> dict[str, Any]:
        return self.read_json("snapshot/run.json")


def shard_key(step: str, shard: int, name: str) -> str:
    return f"{step}/{shard:05d}/{name}"
