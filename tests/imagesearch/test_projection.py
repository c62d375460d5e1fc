"""Projections (identity, PCA-whitening, learned heads): how they apply, how they are stored, and how a version's
projection is checked against its manifest before it is used (a legacy ``whitening.npz`` still loads)."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import msgspec
import numpy as np
import pytest

from imagesearch import projection as projections
from imagesearch.artifacts import commit_local, read_manifest, seal
from imagesearch.errors import ArtifactError
from imagesearch.index import VectorIndex, choose_params
from imagesearch.index_store import EMBEDDINGS, ITEMS, load_index, projection_record, write_items, write_vectors
from imagesearch.manifest import MANIFEST, Manifest, ModelInfo
from imagesearch.projection import (
    LEGACY_WHITENING,
    PROJECTION,
    IdentityProjection,
    LinearHead,
    PcaWhitening,
    Projection,
    load_projection,
    projection_from_bytes,
)
from imagesearch.repository import open_repository
from imagesearch.vectors import l2_normalize
from imagesearch.version_files import check_content
from tasks.unchanged import same_projection, unchanged_since

RNG = np.random.default_rng(0)


def head(in_dim: int = 24, out_dim: int = 8, seed: int = 1) -> LinearHead:
    rng = np.random.default_rng(seed)
    return LinearHead(mean=rng.normal(size=in_dim).astype(np.float32) * 0.1,
                      weight=rng.normal(size=(in_dim, out_dim)).astype(np.float32))


def npz(**arrays: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def test_pca_whitening_decorrelates_and_round_trips() -> None:
    vectors = RNG.normal(size=(500, 32)).astype(np.float32) @ RNG.normal(size=(32, 32)).astype(np.float32)
    whitening = PcaWhitening.fit(vectors, 16, shrinkage=0.0)
    projected = (vectors - whitening.mean) @ whitening.weight
    np.testing.assert_allclose(np.cov(projected, rowvar=False), np.eye(16), atol=1e-3)
    assert (whitening.kind, whitening.in_dim, whitening.out_dim) == ("pca-whitening", 32, 16)
    again = Projection.from_bytes(whitening.to_bytes())
    assert isinstance(again, PcaWhitening) and again.projection_id == whitening.projection_id
    np.testing.assert_array_equal(again.apply(vectors), whitening.apply(vectors))
    assert PcaWhitening.fit(vectors[:10], 512).out_dim == 9  # at most n - 1 axes


@pytest.mark.parametrize("dtype", [np.float16, np.float32])
def test_a_head_is_applied_in_chunks_into_a_preallocated_output(dtype: type, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(projections, "CHUNK_ROWS", 7)  # many chunks and a short last one
    learned = head()
    vectors = l2_normalize(RNG.normal(size=(52, 24)).astype(np.float32)).astype(dtype)
    expected = (vectors.astype(np.float64) - learned.mean) @ learned.weight
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    out = np.full((52, 8), np.nan, np.float32)
    result = learned.apply(vectors, out=out)
    assert result is out and result.dtype == np.float32
    np.testing.assert_allclose(result, expected, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(result, axis=1), 1.0, atol=1e-6)
    assert learned.apply(vectors[:0]).shape == (0, 8)
    with pytest.raises(ValueError, match=r"takes \(n, 24\) vectors"):
        learned.apply(vectors[:, :20])
    with pytest.raises(ValueError, match="output must be"):
        learned.apply(vectors, out=np.empty((52, 8), np.float64))


def test_identity_keeps_the_raw_vectors_as_unit_float32() -> None:
    vectors = l2_normalize(RNG.normal(size=(5, 6)).astype(np.float32)).astype(np.float16)
    identity = IdentityProjection(6)
    applied = identity.apply(vectors)
    assert applied.dtype == np.float32 and (identity.in_dim, identity.out_dim) == (6, 6)
    np.testing.assert_allclose(applied, vectors.astype(np.float32), atol=1e-3)
    np.testing.assert_allclose(np.linalg.norm(applied, axis=1), 1.0, atol=1e-6)
    again = Projection.from_bytes(identity.to_bytes())
    assert isinstance(again, IdentityProjection) and again.dim == 6 and again.projection_id == identity.projection_id


def test_the_projection_id_digests_the_kind_and_every_array() -> None:
    learned = head()
    assert learned.projection_id.startswith("linear-head-")
    assert LinearHead.from_bytes(learned.to_bytes()).projection_id == learned.projection_id
    assert PcaWhitening(mean=learned.mean, weight=learned.weight).projection_id != learned.projection_id
    nudged = learned.weight.copy()
    nudged[3, 2] = np.nextafter(nudged[3, 2], np.float32(np.inf))
    assert LinearHead(mean=learned.mean, weight=nudged).projection_id != learned.projection_id
    assert learned.describe() == {"kind": "linear-head", "in_dim": 24, "out_dim": 8,
                                  "projection_id": learned.projection_id}
    with pytest.raises(ArtifactError, match="holds a linear-head projection, not a pca-whitening"):
        PcaWhitening.from_bytes(learned.to_bytes())


def test_a_head_is_frozen_and_checked_when_made() -> None:
    learned = head()
    with pytest.raises(ValueError, match="read-only"):
        learned.weight[0, 0] = 1.0
    with pytest.raises(ArtifactError, match="must be float32"):
        LinearHead(mean=np.zeros(4), weight=np.zeros((4, 2), np.float32))
    with pytest.raises(ArtifactError, match=r"are not \(in_dim,\) and \(in_dim, out_dim\)"):
        LinearHead(mean=np.zeros(5, np.float32), weight=np.zeros((4, 2), np.float32))
    with pytest.raises(ArtifactError, match="not finite"):
        LinearHead(mean=np.zeros(4, np.float32), weight=np.full((4, 2), np.inf, np.float32))


def huge_claim() -> bytes:
    """A weight whose header claims 100,000 x 100,000 float32 (40 GB) with a few bytes behind it."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False, "shape": (100_000, 100_000)})
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("kind.npy", npz_member(np.array("linear-head")))
        archive.writestr("mean.npy", npz_member(np.zeros(100_000, np.float32)[:10]))
        archive.writestr("weight.npy", header.getvalue() + b"\0" * 64)
    return buffer.getvalue()


def npz_member(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


GOOD = head()
MALFORMED = {
    "not a zip": (b"not a projection", "not a valid projection file"),
    "no kind": (npz(mean=GOOD.mean, weight=GOOD.weight), "records no kind"),
    "unknown kind": (npz(kind=np.array("random-forest"), mean=GOOD.mean, weight=GOOD.weight), "unknown kind"),
    "extra member": (npz(kind=np.array("linear-head"), mean=GOOD.mean, weight=GOOD.weight, bias=GOOD.mean),
                     "holds .*bias.*expected"),
    "missing member": (npz(kind=np.array("linear-head"), weight=GOOD.weight), r"holds \['weight'\], expected"),
    "float64 weight": (npz(kind=np.array("linear-head"), mean=GOOD.mean, weight=GOOD.weight.astype(np.float64)),
                       "weight is float64"),
    "mismatched shapes": (npz(kind=np.array("linear-head"), mean=GOOD.mean[:5], weight=GOOD.weight),
                          r"are not \(in_dim,\)"),
    "not finite": (npz(kind=np.array("linear-head"), mean=GOOD.mean, weight=np.where(GOOD.weight > 0, np.nan,
                   GOOD.weight).astype(np.float32)), "not finite"),
    "pickled object": (npz(kind=np.array("linear-head"), mean=np.array([None], dtype=object), weight=GOOD.weight),
                       "not a plain array"),
    "fortran order": (npz(kind=np.array("linear-head"), mean=GOOD.mean, weight=np.asfortranarray(GOOD.weight)),
                      "not a plain array"),
    "huge claim": (huge_claim(), "claims shape"),
    "identity of no dimensions": (npz(kind=np.array("identity"), dim=np.array(0, np.int64)), "expected 1 to"),
}


@pytest.mark.parametrize("name", list(MALFORMED))
def test_a_malformed_projection_file_is_refused_with_a_clear_error(name: str, tmp_path: Path) -> None:
    data, message = MALFORMED[name]
    with pytest.raises(ArtifactError, match=message):
        projection_from_bytes(data)
    (tmp_path / PROJECTION).write_bytes(data)
    with pytest.raises(ArtifactError, match=rf"^{PROJECTION}: "):  # what a version's check says, before any load
        check_content(tmp_path, PROJECTION)
    with pytest.raises(ArtifactError, match=rf"^{tmp_path / PROJECTION}: "):
        load_projection(tmp_path / PROJECTION)


def test_a_projection_file_over_the_size_limit_is_not_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / PROJECTION).write_bytes(GOOD.to_bytes())
    monkeypatch.setattr(projections, "MAX_BYTES", 1000)
    with pytest.raises(ArtifactError, match="over the 1000-byte limit"):
        load_projection(tmp_path / PROJECTION)
    with pytest.raises(ArtifactError, match="No such file"):
        load_projection(tmp_path / "absent.npz")


MODEL = ModelInfo("test", "0" * 64, "test-model", 24)


def write_version(folder: Path, projection: Projection | None, legacy: PcaWhitening | None = None,
                  count: int = 60) -> tuple[Path, np.ndarray]:
    """A sealed, committed version of ``count`` random 24-d items projected with ``projection`` (recorded) or, as
    versions published before projections, with a ``whitening.npz`` (``legacy``) or nothing."""
    folder.mkdir(parents=True)
    raw = l2_normalize(np.random.default_rng(3).normal(size=(count, 24)).astype(np.float32))
    write_vectors(folder / EMBEDDINGS, [raw], raw.shape)
    write_items(folder / ITEMS, [{"item_id": str(row), "category": "c", "price": 1.0, "on_sale": False}
                                 for row in range(count)])
    params = choose_params(count)
    index: dict[str, object] = {"params": params.to_dict()}
    used = projection or legacy or IdentityProjection(24)
    if projection is not None:
        (folder / PROJECTION).write_bytes(projection.to_bytes())
        index["projection"] = projection_record(folder, projection)
    if legacy is not None:
        (folder / LEGACY_WHITENING).write_bytes(npz(mean=legacy.mean, projection=legacy.weight))
        index["whitening"] = {"dims": legacy.out_dim, "shrinkage": 0.3}
    VectorIndex.build(used.apply(np.load(folder / EMBEDDINGS)), params).save(folder)
    seal(folder, Manifest(version=folder.name, created_at="2026-01-01T00:00:00+00:00", item_count=count, model=MODEL,
                          index=index))
    commit_local(folder)
    return folder, raw


def reseal(folder: Path, **index: object) -> None:
    manifest = Manifest.decode((folder / MANIFEST).read_bytes())
    seal(folder, msgspec.structs.replace(manifest, index={**manifest.index, **index}))
    commit_local(folder)


def test_a_version_is_searched_in_its_recorded_projection(tmp_path: Path) -> None:
    learned = head()
    folder, raw = write_version(tmp_path / "20260101T000000Z", learned)
    loaded = load_index(folder, "test-model")
    assert loaded.projection.projection_id == learned.projection_id and loaded.embeddings.shape == (60, 8)
    rows, _ = loaded.vectors.search(loaded.project(raw[7]), 1)
    assert rows[0][0] == 7


def test_a_legacy_whitening_version_still_loads_as_pca_whitening(tmp_path: Path) -> None:
    raw = l2_normalize(np.random.default_rng(3).normal(size=(60, 24)).astype(np.float32))
    whitening = PcaWhitening.fit(raw, 12)
    folder, raw = write_version(tmp_path / "20260101T000000Z", None, legacy=whitening)
    loaded = load_index(folder, "test-model")
    assert isinstance(loaded.projection, PcaWhitening) and loaded.projection.projection_id == whitening.projection_id
    assert loaded.embeddings.shape == (60, 12)
    rows, _ = loaded.vectors.search(loaded.project(raw[11]), 1)
    assert rows[0][0] == 11
    plain, _ = write_version(tmp_path / "20260102T000000Z", None)  # neither file: the raw vectors
    assert load_index(plain).projection.describe()["kind"] == "identity"


def test_a_projection_that_is_not_the_one_recorded_is_refused(tmp_path: Path) -> None:
    folder, _ = write_version(tmp_path / "20260101T000000Z", head())
    other = head(seed=2)
    (folder / PROJECTION).write_bytes(other.to_bytes())  # swapped, and the manifest resealed over it
    reseal(folder)
    with pytest.raises(ArtifactError, match=r"not the file the manifest's index.projection records \(sha256\)"):
        load_index(folder)
    reseal(folder, projection={**projection_record(folder, other), "projection_id": head().projection_id})
    with pytest.raises(ArtifactError, match=r"does not match the manifest's index\.projection \(projection_id"):
        load_index(folder)
    reseal(folder, projection={**projection_record(folder, other), "out_dim": 16})
    with pytest.raises(ArtifactError, match=r"does not match the manifest's index.projection \(out_dim"):
        load_index(folder)
    reseal(folder, projection=None)
    with pytest.raises(ArtifactError, match=r"is not recorded in the manifest's index\.projection"):
        load_index(folder)


def test_a_recorded_projection_must_be_there_and_alone(tmp_path: Path) -> None:
    folder, _ = write_version(tmp_path / "20260101T000000Z", head())
    (folder / PROJECTION).unlink()
    reseal(folder)
    with pytest.raises(ArtifactError, match=r"records a linear-head projection but .* has no projection\.npz"):
        load_index(folder)
    both, _ = write_version(tmp_path / "20260102T000000Z", head())
    (both / LEGACY_WHITENING).write_bytes(npz(mean=GOOD.mean, projection=GOOD.weight))
    reseal(both)
    with pytest.raises(ArtifactError, match=r"holds both projection\.npz and whitening\.npz"):
        load_index(both)
    wide, _ = write_version(tmp_path / "20260103T000000Z", head(in_dim=24))
    (wide / PROJECTION).write_bytes(head(in_dim=32).to_bytes())
    reseal(wide, projection=projection_record(wide, head(in_dim=32)))
    with pytest.raises(ArtifactError, match="takes 32-d vectors, its embeddings are 24-d"):
        load_index(wide)


def test_nothing_changed_compares_the_projection(published_repository: tuple[Path, str]) -> None:
    repository, version = published_repository
    repo = open_repository(str(repository))
    manifest = read_manifest(repo, version)
    served = manifest.index["projection"]
    assert served["kind"] in ("identity", "pca-whitening")  # learned by build_index: the run gave none
    snapshot, model = manifest.catalog["snapshot_sha256"], manifest.model.model_id
    assert unchanged_since(repo, version, snapshot, model, None)
    new_head = head(in_dim=manifest.model.dim, out_dim=16).describe()
    assert not unchanged_since(repo, version, snapshot, model, new_head)  # a new head: the search space is rebuilt
    assert same_projection(new_head, new_head) and not same_projection(new_head, None)
    assert same_projection(None, None)  # a version published before projections learned its whitening
    assert not same_projection("linear-head", None)  # type: ignore[arg-type]  # a malformed record: rebuild
