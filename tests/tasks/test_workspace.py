"""tasks.workspace: the run workspace's files are named once, by WorkspaceLayout, which names every file a run writes."""

from __future__ import annotations

from pathlib import Path

import pytest

from tasks.workspace import LAYOUT, WorkspaceLayout


def test_files_per_shard_need_their_shard() -> None:
    assert LAYOUT.PIXELS.of(3) == "preprocess/00003/pixels.npz" and LAYOUT.PIXELS.sharded
    assert LAYOUT.BUILD.key == "build/index.json" and not LAYOUT.BUILD.sharded
    with pytest.raises(ValueError, match=r"per shard: use \.of"):
        _ = LAYOUT.EMBEDDINGS.key
    assert LAYOUT.SHARD_ITEMS.top == "shards" and LAYOUT.METRICS.top == "evaluate"


def test_keys_are_matched_to_their_entry() -> None:
    assert WorkspaceLayout.file_of("embed/00012/model.json") is LAYOUT.MODEL
    assert WorkspaceLayout.file_of("index/scann/dataset.npy") is LAYOUT.INDEX
    assert WorkspaceLayout.file_of("index") is None  # a folder's files, not the folder
    assert WorkspaceLayout.file_of("embed/12/model.json") is None and WorkspaceLayout.file_of("notes.txt") is None


def test_the_workspace_layout_names_every_file_a_run_writes(published_repository: tuple[Path, str]) -> None:
    folder, version = published_repository
    workspace = folder / "runs" / version
    keys = sorted(path.relative_to(workspace).as_posix() for path in workspace.rglob("*") if path.is_file())
    assert [key for key in keys if WorkspaceLayout.file_of(key) is None] == []
    assert {WorkspaceLayout.file_of(key) for key in keys} == set(WorkspaceLayout.FILES)  # a run writes every one
    assert all(file.path in (WorkspaceLayout.__doc__ or "") for file in WorkspaceLayout.FILES)
