"""A run workspace: a prefix in the model repository (local or gs://) that the steps share.

Its files are named once, by :class:`WorkspaceLayout` (whose docstring lists them, generated from the
entries); no step spells a workspace path.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from imagesearch.errors import VersionTakenError
from imagesearch.repository import DEFAULT_RETRY_S, ModelRepository, open_repository


@dataclass(frozen=True)
class WorkspaceFile:
    """One file (or, with ``folder``, one folder) of the run workspace; ``{shard}`` in the path: per work shard;
    ``optional``: written only by some runs."""

    path: str
    about: str
    folder: bool = False
    optional: bool = False

    @property
    def sharded(self) -> bool:
        return "{shard" in self.path

    @property
    def key(self) -> str:
        """The key of an unsharded file."""
        if self.sharded:
            raise ValueError(f"{self.path} is per shard: use .of(shard)")
        return self.path

    def of(self, shard: int) -> str:
        """The key of shard ``shard``'s file."""
        return self.path.format(shard=shard)

    @property
    def top(self) -> str:
        """The folder the file is in, at the workspace's top."""
        return self.path.split("/", 1)[0]

    def matches(self, key: str) -> bool:
        """Whether ``key`` is this file (or inside this folder)."""
        pattern = re.escape(self.path).replace(re.escape("{shard:05d}"), r"\d{5}")
        return re.fullmatch(pattern + ("/.+" if self.folder else ""), key) is not None


class WorkspaceLayout:
    RUN = WorkspaceFile("snapshot/run.json", "version, catalog uri, snapshot hash, model, shard count, previous "
                        "version, whether nothing changed")
    PLAN = WorkspaceFile("snapshot/items.parquet", "every item of the version, with its row in the previous version "
                         "(-1: new or changed, it is in a shard)")
    REJECTED = WorkspaceFile("snapshot/errors.jsonl", "catalog rows rejected, with line and reason")
    SHARD_ITEMS = WorkspaceFile("shards/{shard:05d}/items.jsonl", "the new or changed items of work shard i")
    PIXELS = WorkspaceFile("preprocess/{shard:05d}/pixels.npz", "uint8 (n, S, S, 3) fitted images of items to embed")
    PREPROCESSED = WorkspaceFile("preprocess/{shard:05d}/items.jsonl", "per item: image_sha256 and status (embed / "
                                 "reuse: same bytes as before)")
    FAILURES = WorkspaceFile("preprocess/{shard:05d}/failures.jsonl", "per failed item: reason and message")
    FAILED_STAMPS = WorkspaceFile("preprocess/{shard:05d}/failed.json", "per failed item: the image stamp seen when "
                                  "it was fetched")
    EMBEDDINGS = WorkspaceFile("embed/{shard:05d}/embeddings.npy", "(n, dim) float32 for the shard's items with "
                               "status embed, in items order")
    MODEL = WorkspaceFile("embed/{shard:05d}/model.json", "the model the shard was embedded with")
    PROJECTION = WorkspaceFile("model/projection.npz", "the projection the index is built with (snapshot's --projection);"
                               " absent: build_index learns a PCA-whitening", optional=True)
    INDEX = WorkspaceFile("index", "the version directory (see imagesearch.index_store)", folder=True)
    BUILD = WorkspaceFile("build/index.json", "the index's parameters, model, item count, projection, snapshot hash")
    METRICS = WorkspaceFile("evaluate/metrics.json", "the candidate's metrics")
    GATE = WorkspaceFile("evaluate/gate.json", "the gate's report (vs the serving version)")
    # A model run's (the image_model DAG: tasks/steps/{gather_training,train_model,evaluate_model,publish_model}.py).
    TRAINING_RUN = WorkspaceFile("training/run.json", "model run: model version, index version learned from, backbone, "
                                 "held-out split and copy counts", optional=True)
    TRAINING_DATA = WorkspaceFile("training/data.npz", "model run: training rows, categories, training copies and "
                                  "evaluation copies (raw vectors) with their rows and transforms", optional=True)
    HEAD = WorkspaceFile("training/head.npz", "model run: the trained head (a projection.npz)", optional=True)
    HEAD_REPORT = WorkspaceFile("training/report.json", "model run: train_head's report", optional=True)
    MODEL_EVALUATION = WorkspaceFile("evaluate_model/report.json", "model run: candidate, current and raw scores, and "
                                     "the gate's verdict", optional=True)
    COMMITTED = WorkspaceFile("publish/committed.json", "written once the version is committed: the workspace is "
                              "read-only from then on")

    FILES: ClassVar[tuple[WorkspaceFile, ...]]

    @classmethod
    def describe(cls) -> str:
        width = max(len(file.path) + file.folder * 4 for file in cls.FILES)
        return "\n".join(f"    {file.path + ('/...' if file.folder else ''):<{width}}  {file.about}" for file in cls.FILES)

    @classmethod
    def file_of(cls, key: str) -> WorkspaceFile | None:
        """The layout entry ``key`` is (None: a key the layout does not name)."""
        return next((file for file in cls.FILES if file.matches(key)), None)


WorkspaceLayout.FILES = tuple(value for value in vars(WorkspaceLayout).values() if isinstance(value, WorkspaceFile))
WorkspaceLayout.__doc__ = ("The files of a run workspace (``{shard:05d}``: a work shard's number):\n\n"
                           + WorkspaceLayout.describe())
LAYOUT = WorkspaceLayout


def hard_link(source: Path, target: Path) -> bool:
    """Link ``target`` to ``source``; False where the file system cannot (another device, no hard links)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target)
    except OSError:
        return False
    return True


class Workspace:
    def __init__(self, uri: str, retry_s: float = DEFAULT_RETRY_S) -> None:
        """``retry_s``: how long a GCS call may retry (the steps pass ``settings.storage.repository_retry_s``)."""
        self.uri = uri
        self.store: ModelRepository = open_repository(uri, retry_s=retry_s)
        self._writable = False

    def check_writable(self, key: str) -> None:
        """A committed version's workspace is never rewritten (its files are what was published)."""
        if not self._writable:
            if self.store.exists(LAYOUT.COMMITTED.key):
                raise VersionTakenError(
                    f"refusing to write {key}: the version of workspace {self.uri} is already committed and immutable; "
                    "re-run as a new version")
            self._writable = True

    def put_bytes(self, key: str, data: bytes) -> None:
        self.check_writable(key)
        self.store.put_bytes(key, data)

    def mark_committed(self, record: dict[str, Any]) -> None:
        self.store.put_bytes(LAYOUT.COMMITTED.key, json.dumps(record, indent=2, sort_keys=True).encode())

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

    def upload_dir(self, prefix: str, directory: Path, *, move: bool = False) -> None:
        """Store every file of ``directory`` under ``prefix``; ``move``: consume them (``directory`` is a
        ``store.scratch_dir()``, whose files a local workspace takes by renaming them)."""
        for path in sorted(p for p in directory.rglob("*") if p.is_file()):
            self.check_writable(prefix)
            key = f"{prefix}/{path.relative_to(directory).as_posix()}"
            if move:
                self.store.move_file(key, path)
            else:
                self.store.put_file(key, path)

    def download_dir(self, prefix: str, directory: Path) -> Path:
        """The files under ``prefix`` in ``directory``, which the caller may add files to but must not rewrite:
        hard links to a local workspace's files (they are only ever replaced whole, never rewritten in place;
        at a million items that is GBs not copied), else downloaded."""
        for key in self.store.list_keys(prefix):
            target = directory / key[len(prefix) + 1 :]
            local = self.store.local_file(key)
            if local is None or not hard_link(local, target):
                self.store.get_file(key, target)
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

    # Shared run facts written by ``snapshot``.
    def run_info(self) -> dict[str, Any]:
        return self.read_json(LAYOUT.RUN.key)
