"""Change stamps: cheap metadata of allowed image objects only; a refused URI is never looked at."""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa
import pytest

from imagesearch.input_policy import InputPolicy
from imagesearch.stamps import MISSING, REFUSED, image_stamps, stamp_column


def test_local_stamps_follow_size_and_mtime(tmp_path: Path) -> None:
    image = tmp_path / "a.png"
    image.write_bytes(b"12345")
    os.utime(image, ns=(1_000_000_000, 2_000_000_000))
    policy = InputPolicy(local_roots=(tmp_path,))
    assert image_stamps([str(image), str(tmp_path / "gone.png")], policy) == ["5:2000000000", MISSING]
    image.write_bytes(b"123456")
    assert image_stamps([str(image)], policy)[0].startswith("6:")


@pytest.mark.parametrize("uri", ["/etc/hostname", "file:///proc/self/environ", "gs://someone-elses-bucket/a.png",
                                 "ftp://example.com/a.png", "{root}/../outside.png"])
def test_refused_uris_are_not_stat_ed(tmp_path: Path, uri: str, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path.parent / "outside.png").write_bytes(b"x")
    looked_at: list[object] = []
    monkeypatch.setattr("imagesearch.stamps.local_stamp", lambda path: looked_at.append(path) or "seen")
    monkeypatch.setattr("imagesearch.stamps.gcs_stamps", lambda uris: looked_at.append(list(uris)) or {})
    policy = InputPolicy(local_roots=(tmp_path,), gs_prefixes=(("our-bucket", ""),))
    assert image_stamps([uri.format(root=tmp_path)], policy) == [REFUSED]
    assert looked_at == []


def test_a_symlinked_file_or_folder_is_resolved_before_it_is_stamped(tmp_path: Path) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "images").mkdir(parents=True)
    outside.mkdir()
    (outside / "secret.png").write_bytes(b"secret")
    (root / "images" / "inside.png").write_bytes(b"12345")
    (root / "images" / "link-out.png").symlink_to(outside / "secret.png")
    (root / "images" / "link-in.png").symlink_to(root / "images" / "inside.png")
    (root / "folder-out").symlink_to(outside)
    policy = InputPolicy(local_roots=(root,))
    uris = [str(root / "images" / name) for name in ("inside.png", "link-out.png", "link-in.png", "gone.png")]
    stamps = image_stamps([*uris, str(root / "folder-out" / "secret.png"), f"file://{root}/images/inside.png"], policy)
    assert stamps == [stamps[0], REFUSED, stamps[0], MISSING, REFUSED, stamps[0]]
    assert stamps[0].startswith("5:")


def test_a_column_is_stamped_as_each_uri_alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "images" / "ü ñ").mkdir(parents=True)
    outside.mkdir()
    (outside / "secret.png").write_bytes(b"secret")
    (root / "images" / "inside.png").write_bytes(b"12345")
    (root / "images" / "ü ñ" / "é.png").write_bytes(b"1")
    (root / "top.png").write_bytes(b"22")
    (root / "images" / "link-out.png").symlink_to(outside / "secret.png")
    (root / "images" / "link-in.png").symlink_to(root / "images" / "inside.png")
    (root / "folder-out").symlink_to(outside)
    images = root / "images"
    uris = [f"{images}/inside.png", f"{images}/link-out.png", f"{images}/link-in.png", f"{images}/gone.png",
            f"{root}/folder-out/secret.png", f"file://{images}/inside.png", f"{images}//inside.png", f"{images}/./inside.png",
            f"{images}/../images/inside.png", f"{images}/inside.png/", f"{images}/ü ñ/é.png", f"{root}/top.png",
            f"{outside}/secret.png", "/etc/hostname", "relative.png", "~/x.png", "gs://our-bucket/a.png",
            "gs://someone-elses-bucket/a.png", "https://example.com/a.png", "http://example.com/a.png",
            "ftp://example.com/a.png", f"{images}/inside.png#frag", f"{images}/nul\x00.png", ""]
    column = [*uris, *reversed(uris), *uris]
    monkeypatch.setattr("imagesearch.stamps.gcs_stamps", lambda names: {name: "7:1" for name in names})
    policy = InputPolicy(local_roots=(root,), gs_prefixes=(("our-bucket", ""),))
    expected = [image_stamps([uri], policy)[0] for uri in column]
    assert stamp_column(pa.array(column), policy).to_pylist() == expected
    assert expected[:4] == [expected[0], REFUSED, expected[0], MISSING] and expected[0].startswith("5:")
    no_files = InputPolicy(schemes=frozenset({"https"}))
    assert stamp_column(pa.chunked_array([column[:5], column[5:]]), no_files).to_pylist() == image_stamps(column, no_files)


def test_each_distinct_uri_is_looked_at_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "a.png").write_bytes(b"1")
    looked_at: list[str] = []
    real = os.lstat
    monkeypatch.setattr("imagesearch.stamps.os.lstat", lambda path: looked_at.append(path) or real(path))
    stamps = stamp_column(pa.array([str(tmp_path / "a.png")] * 1000 + [str(tmp_path / "b.png")] * 10),
                          InputPolicy(local_roots=(tmp_path,)))
    files = sorted(str(path) for path in looked_at if str(path).endswith(".png"))  # (confining the folder lstats it)
    assert files == [str(tmp_path / "a.png"), str(tmp_path / "b.png")]
    assert stamps.to_pylist() == [stamps[0].as_py()] * 1000 + [MISSING] * 10
