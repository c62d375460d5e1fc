"""The evaluation's stored sample: JPEGs of fitted images written and read back, chosen new-first, and the
previous version's sample reused for unchanged items (only when it checks out)."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import numpy as np
from PIL import Image

from imagesearch.artifacts import read_manifest, version_key
from imagesearch.index_store import SAMPLES
from imagesearch.repository import open_repository
from tasks import samples


def test_samples_round_trip(tmp_path: Path) -> None:
    pixels = np.full((32, 32, 3), 200, np.uint8)
    stored = {"b": samples.encode(pixels), "a": samples.encode(pixels[::-1])}
    samples.write_samples(tmp_path / SAMPLES, stored)
    assert samples.read_samples(tmp_path / SAMPLES) == stored
    assert Image.open(io.BytesIO(stored["b"])).size == (32, 32)
    assert samples.read_samples(tmp_path / "absent.npz") == {}


def test_new_images_first_then_the_previous_sample() -> None:
    fresh, reused = samples.choose(["n1", "n2"], {"o1": b"", "o2": b"", "o3": b""}, size=4, seed=0)
    assert fresh == ["n1", "n2"] and len(reused) == 2 and set(reused) < {"o1", "o2", "o3"}
    assert samples.choose(["n1", "n2", "n3"], {"o1": b""}, size=2, seed=0)[1] == []
    assert samples.choose(["n1", "n2", "n3"], {}, size=2, seed=0) == samples.choose(["n1", "n2", "n3"], {}, 2, 0)


def test_the_previous_versions_sample_only_when_intact(tmp_path: Path, published_repository: tuple[Path, str]) -> None:
    shutil.copytree(published_repository[0], tmp_path / "repo", ignore=shutil.ignore_patterns("runs"))
    repo = open_repository(str(tmp_path / "repo"))
    manifest = read_manifest(repo, published_repository[1])
    reused = samples.previous_samples(repo, manifest, ["chelsea", "coffee", "not-there"])
    assert set(reused) == {"chelsea", "coffee"}
    assert samples.previous_samples(repo, None, ["chelsea"]) == {}
    damaged = tmp_path / "repo" / version_key(manifest.version, SAMPLES)
    damaged.chmod(0o644)
    data = bytearray(damaged.read_bytes())
    data[len(data) // 2] ^= 1
    damaged.write_bytes(bytes(data))
    assert samples.previous_samples(repo, manifest, ["chelsea"]) == {}  # fails its checksum: not used
