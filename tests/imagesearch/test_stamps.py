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
