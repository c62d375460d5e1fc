"""imagesearch.manifest: version ids, and a manifest that names only files inside its version."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from imagesearch.errors import ArtifactError
from imagesearch.manifest import VERSION_PATTERN, FileEntry, Manifest, ModelInfo, check_version, new_version

MODEL = ModelInfo("m", "w" * 64, "id", 4)


def test_versions_sort_by_time_and_never_collide() -> None:
    assert new_version() > "20260101T000000Z"
    second = datetime(2026, 11, 27, 5, 0, tzinfo=UTC)
    made = {new_version(second) for _ in range(50)}  # fifty versions in the same second
    assert len(made) == 50 and all(VERSION_PATTERN.match(version) for version in made)
    assert all(version.startswith("20261127T050000Z-") for version in made)
    # Derived from a run id: every try of one run builds the same version; another run another one.
    assert new_version(second, unique="manual__a") == new_version(second, unique="manual__a")
    assert new_version(second, unique="manual__a") != new_version(second, unique="manual__b")


@pytest.mark.parametrize("path", ["/etc/passwd", "../x", "a/../b", "a//b", "manifest.json", "_COMMIT", "c:x", "a\\b"])
def test_a_manifest_naming_a_path_outside_its_version_is_refused(path: str) -> None:
    manifest = Manifest("20260101T000000Z", "2026-01-01T00:00:00+00:00", 1, MODEL, files=[FileEntry(path, 1, "0" * 64)])
    with pytest.raises(ArtifactError, match="not a relative path inside the version"):
        Manifest.decode(manifest.encode())


def test_a_manifest_round_trips_and_refuses_a_file_listed_twice() -> None:
    entry = FileEntry("items.parquet", 1, "0" * 64)
    manifest = Manifest("20260101T000000Z", "2026-01-01T00:00:00+00:00", 1, MODEL, files=[entry],
                        gate={"passed": True})
    assert Manifest.decode(manifest.encode()) == manifest and manifest.passed_gate
    with pytest.raises(ArtifactError, match=r"lists 'items\.parquet' twice"):
        Manifest.decode(Manifest("20260101T000000Z", "x", 1, MODEL, files=[entry, entry]).encode())
    with pytest.raises(ArtifactError, match="invalid manifest"):
        Manifest.decode(b"{")


@pytest.mark.parametrize("version", ["20260101T000000Z\n", "20260101T000000Z-abc\n", " 20260101T000000Z"])
def test_a_version_pattern_matches_whole_strings(version: str) -> None:
    with pytest.raises(ArtifactError, match="invalid index version"):
        check_version(version)
