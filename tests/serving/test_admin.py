"""``POST /admin/index``: mounted only with a token, bearer-authenticated, and a version that fails verification is
refused while the served one stays."""

from __future__ import annotations

from pathlib import Path

from litestar.testing import TestClient

from imagesearch.embedder import Embedder
from imagesearch.settings import ServingSettings, Settings
from serving.app import create_app
from tests.serving.conftest import (
    admin_headers,
    corrupt_copy,
    derive_version,
    serving_settings,
    swap,
    uncommitted_copy,
)

VERSION_A = "20260101T000000Z"


def test_admin_is_not_mounted_without_a_token(index_a: Path, embedder: Embedder) -> None:
    with TestClient(create_app(Settings.from_env({}, serving=ServingSettings(index_dir=str(index_a))), embedder)) as client:
        assert swap(client, index_a).status_code == 404
        assert "/admin/index" not in client.get("/schema/openapi.json").json()["paths"]


def test_admin_needs_the_right_bearer_token(client: TestClient, index_a: Path) -> None:
    missing = client.post("/admin/index", json={"directory": str(index_a)})
    assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
    assert swap(client, index_a, token="wrong").status_code == 403
    basic = client.post("/admin/index", json={"directory": str(index_a)}, headers={"Authorization": "Basic eDp5"})
    assert basic.status_code == 403


def test_a_bad_directory_is_refused_with_422_and_the_old_index_keeps_serving(
    index_dir: Path, index_a: Path, tmp_path: Path, embedder: Embedder
) -> None:
    root = index_dir.parent
    other_model = derive_version(index_a, root / "20260104T000000Z", "20260104T000000Z", list(range(20)),
                                 model_id="another-model")
    bad = {
        root / "20260105T000000Z": "has no _COMMIT",
        uncommitted_copy(index_a, root / "20260106T000000Z"): "has no _COMMIT",
        corrupt_copy(index_a, root / "20260107T000000Z"): "holds version 20260101T000000Z, not 20260107T000000Z",
        other_model: "built with model another-model",
        tmp_path / "20260108T000000Z": "is not <index root>/<version>",
        root / "serving-index": "is not <index root>/<version>",
    }
    corrupt = root.parent / "corrupt-root" / VERSION_A
    corrupt_copy(index_a, corrupt)
    with TestClient(create_app(serving_settings(index_dir), embedder)) as client:
        for directory, message in bad.items():
            response = swap(client, directory)
            assert response.status_code == 422, response.text
            assert response.json()["error"] == "invalid_index" and message in response.json()["detail"]
            assert client.get("/readyz").json()["version"] == VERSION_A
    with TestClient(create_app(serving_settings(index_dir, index_root=str(corrupt.parent)), embedder)) as client:
        response = swap(client, corrupt)
        assert response.status_code == 422 and "checksum mismatch for embeddings.npy" in response.json()["detail"]
        assert client.get("/readyz").json()["version"] == VERSION_A
        relative = swap(client, "indexes/20260101T000000Z")
        assert relative.status_code == 400 and "absolute" in relative.json()["detail"]
        assert client.post("/admin/index", json={"dir": "x"}, headers=admin_headers()).status_code == 400
        assert client.get("/v1/items/coffee/similar").status_code == 200
