"""tasks.workspace: the run workspace's files are named once, by WorkspaceLayout, which names every file a run writes;
they round-trip through a local folder or GCS, and the workspace is read-only once the version is committed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from imagesearch.errors import VersionTakenError
from tasks.workspace import LAYOUT, Workspace, WorkspaceLayout


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
    written = {WorkspaceLayout.file_of(key) for key in keys}
    assert written >= {file for file in WorkspaceLayout.FILES if not file.optional}  # a run writes every one
    assert LAYOUT.PROJECTION.optional  # the head: there only when snapshot is given --projection
    assert all(file.path in (WorkspaceLayout.__doc__ or "") for file in WorkspaceLayout.FILES)


@pytest.mark.parametrize("store", ["local", "gcs"])
def test_round_trips_and_committed_means_read_only(store: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    uri = str(tmp_path / "ws") if store == "local" else request.getfixturevalue("gcs_bucket") + "/runs/v1"
    workspace = Workspace(uri, retry_s=5)
    workspace.write_json(LAYOUT.RUN.key, {"version": "v1"})
    workspace.write_jsonl(LAYOUT.SHARD_ITEMS.of(0), [{"item_id": "a"}, {"item_id": "b"}])
    pixels = np.arange(2 * 4 * 4 * 3, dtype=np.uint8).reshape(2, 4, 4, 3)
    workspace.write_array(LAYOUT.PIXELS.of(0), pixels, compressed=True)
    workspace.write_array(LAYOUT.EMBEDDINGS.of(0), pixels.reshape(2, -1).astype(np.float32))
    assert workspace.run_info() == {"version": "v1"}
    assert [r["item_id"] for r in workspace.read_jsonl(LAYOUT.SHARD_ITEMS.of(0))] == ["a", "b"]
    assert np.array_equal(workspace.read_array(LAYOUT.PIXELS.of(0)), pixels)
    assert workspace.read_array(LAYOUT.EMBEDDINGS.of(0)).shape == (2, 48)
    (tmp_path / "dir" / "scann").mkdir(parents=True)
    (tmp_path / "dir" / "scann" / "a.pb").write_bytes(b"a")
    workspace.upload_dir(LAYOUT.INDEX.key, tmp_path / "dir")
    with workspace.directory(LAYOUT.INDEX.key) as folder:
        assert (folder / "scann" / "a.pb").read_bytes() == b"a"
    copied = workspace.download_dir(LAYOUT.INDEX.key, tmp_path / "copy")
    assert (copied / "scann" / "a.pb").read_bytes() == b"a"
    if store == "local":  # linked, not copied...
        assert (copied / "scann" / "a.pb").samefile(tmp_path / "ws" / LAYOUT.INDEX.key / "scann" / "a.pb")
        # ...which is safe because a workspace file is only ever replaced whole: the copy keeps what it had.
        (tmp_path / "dir" / "scann" / "a.pb").write_bytes(b"b")
        workspace.upload_dir(LAYOUT.INDEX.key, tmp_path / "dir")
        assert (copied / "scann" / "a.pb").read_bytes() == b"a"

    workspace.mark_committed({"version": "v1"})
    reopened = Workspace(uri, retry_s=5)
    with pytest.raises(VersionTakenError, match="already committed and immutable"):
        reopened.write_json(LAYOUT.METRICS.key, {})
    assert not reopened.exists(LAYOUT.METRICS.key)
