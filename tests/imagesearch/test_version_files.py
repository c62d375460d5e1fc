"""The allow-list of what a version may hold, checked on the files themselves (no version around them)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from imagesearch.errors import ArtifactError
from imagesearch.version_files import KINDS, SCANN_ASSETS, check_content, check_name

ASSETS_BESIDE = 'assets {\n  asset_type: DATASET_NPY\n  asset_path: "dataset.npy"\n}\n'


def write(directory: Path, name: str, content: bytes) -> None:
    (directory / name).parent.mkdir(parents=True, exist_ok=True)
    (directory / name).write_bytes(content)


def test_every_written_name_is_allowed_and_nothing_else() -> None:
    assert all(check_name(name) == name for name in KINDS)
    for name in ("scann/scann_docids.pkl", "../items.parquet", "items.parquet ", "ITEMS.PARQUET", "scann/x.npy"):
        with pytest.raises(ArtifactError, match="never writes into a version"):
            check_name(name)


def test_plain_arrays_pass_and_object_arrays_are_refused(tmp_path: Path) -> None:
    np.save(tmp_path / "embeddings.npy", np.zeros((3, 4), np.float32))
    check_content(tmp_path, "embeddings.npy")
    (tmp_path / "scann").mkdir()
    np.save(tmp_path / "scann" / "dataset.npy", np.array([{}], dtype=object))
    with pytest.raises(ArtifactError, match=r"scann/dataset\.npy: holds an array of dtype object"):
        check_content(tmp_path, "scann/dataset.npy")


def test_an_archive_of_arrays_may_hold_no_object_array_nor_another_member(tmp_path: Path) -> None:
    np.savez(tmp_path / "samples.npz", ids=np.arange(3), vectors=np.ones((3, 2), np.float32))
    check_content(tmp_path, "samples.npz")
    np.savez(tmp_path / "whitening.npz", mean=np.array([None], dtype=object))
    with pytest.raises(ArtifactError, match=r"whitening\.npz: holds an array of dtype object"):
        check_content(tmp_path, "whitening.npz")


def test_scann_assets_may_name_only_files_beside_them(tmp_path: Path) -> None:
    write(tmp_path, SCANN_ASSETS, ASSETS_BESIDE.encode())
    check_content(tmp_path, SCANN_ASSETS)
    for assets in (ASSETS_BESIDE.replace("dataset.npy", "/etc/passwd.npy"),
                   ASSETS_BESIDE.replace("dataset.npy", "scann_docids.pkl"),
                   ASSETS_BESIDE + "extra: 1\n", ""):
        write(tmp_path, SCANN_ASSETS, assets.encode())
        with pytest.raises(ArtifactError, match=r"scann_assets\.pbtxt: "):
            check_content(tmp_path, SCANN_ASSETS)


def test_a_parquet_file_needs_its_magic_at_both_ends(tmp_path: Path) -> None:
    write(tmp_path, "items.parquet", b"PAR1" + b"\0" * 16 + b"PAR1")
    check_content(tmp_path, "items.parquet")
    write(tmp_path, "items.parquet", b"PAR1" + b"\0" * 16)
    with pytest.raises(ArtifactError, match=r"items\.parquet: not a Parquet file"):
        check_content(tmp_path, "items.parquet")


@pytest.mark.parametrize(("name", "written", "wrong"), [
    ("scann/int8_dataset.npy", np.zeros((4, 8), np.int8), np.zeros((4, 8), np.float32)),
    ("scann/int8_multipliers.npy", np.ones(8, np.float32), np.ones((1, 8), np.float32)),
    ("scann/dp_norms.npy", np.zeros(0, np.float32), np.zeros(4, np.float64)),
    ("scann/bfloat16_dataset.npy", np.zeros((4, 8), np.int16), np.zeros((4, 8), np.uint16)),
    ("scann/hashed_dataset_soar.npy", np.zeros((4, 4), np.uint8), np.zeros(16, np.uint8)),
])
def test_a_quantized_or_spilled_index_file_must_hold_the_array_scann_writes(
    tmp_path: Path, name: str, written: np.ndarray, wrong: np.ndarray
) -> None:
    (tmp_path / "scann").mkdir()
    np.save(tmp_path / name, written)
    check_content(tmp_path, name)
    np.save(tmp_path / name, wrong)
    with pytest.raises(ArtifactError, match=rf"{name}: holds a {wrong.ndim}-d {wrong.dtype} array, not a "):
        check_content(tmp_path, name)
    np.save(tmp_path / name, np.array([{}], dtype=object))
    with pytest.raises(ArtifactError, match="would be unpickled"):
        check_content(tmp_path, name)
