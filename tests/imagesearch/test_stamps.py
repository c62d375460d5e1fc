"""Change stamps: cheap metadata of allowed image objects only; a refused URI is never looked at."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from imagesearch.input_policy import InputPolicy
from imagesearch.stamps import MISSING, REFUSED, image_stamps


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
