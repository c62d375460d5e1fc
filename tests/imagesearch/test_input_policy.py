"""The input policy from settings: catalogs and images only from the allowed roots, buckets, hosts and networks."""

from __future__ import annotations

from pathlib import Path

import pytest

from imagesearch.errors import InputRefusedError
from imagesearch.input_policy import InputPolicy
from imagesearch.settings import Settings


def test_images_from_settings_plus_the_catalogs_own_folder(tmp_path: Path) -> None:
    settings = Settings.from_env({"IMAGESEARCH_IMAGE_SCHEMES": "file,gs,https",
                                  "IMAGESEARCH_IMAGE_LOCAL_ROOTS": str(tmp_path / "shared"),
                                  "IMAGESEARCH_IMAGE_BUCKETS": "pictures", "IMAGESEARCH_IMAGE_HOSTS": "*.cdn.example"})
    policy = InputPolicy.for_images(settings.inputs, str(tmp_path / "catalogs" / "catalog.csv"))
    policy.check_location(str(tmp_path / "catalogs" / "images" / "a.png"))  # beside the catalog
    policy.check_location(str(tmp_path / "shared" / "b.png"))
    policy.check_location("gs://pictures/any/c.png")
    policy.check_url("https://img.cdn.example/d.png")
    for refused in (str(tmp_path / "elsewhere.png"), "gs://other/c.png", "s3://pictures/c.png"):
        with pytest.raises(InputRefusedError):
            policy.check_location(refused)
    for refused in ("https://evil.example/d.png", "http://img.cdn.example/d.png"):
        with pytest.raises(InputRefusedError):
            policy.check_url(refused)


def test_catalogs_only_under_the_catalog_prefixes(tmp_path: Path) -> None:
    prefixes = f"{tmp_path},gs://catalogs/prod/,https://host/cat/"
    policy = InputPolicy.for_catalogs(Settings.from_env({"IMAGESEARCH_CATALOG_PREFIXES": prefixes}).inputs)
    policy.check_location(str(tmp_path / "catalog.csv"))
    policy.check_location("gs://catalogs/prod/catalog.parquet")
    policy.check_url("https://host/cat/catalog.csv")
    with pytest.raises(InputRefusedError):
        policy.check_location("gs://catalogs/dev/catalog.parquet")
    with pytest.raises(InputRefusedError, match="not under an allowed prefix"):
        policy.check_url("https://host/other/catalog.csv")


def test_private_addresses_are_refused_unless_their_network_is_allowed() -> None:
    assert InputPolicy().public_addresses("93.184.215.14", 443) == ["93.184.215.14"]
    for private in ("127.0.0.1", "10.1.2.3", "169.254.169.254", "::1", "::ffff:127.0.0.1"):
        with pytest.raises(InputRefusedError):
            InputPolicy().public_addresses(private, 80)
    intranet = InputPolicy.for_images(Settings.from_env({"IMAGESEARCH_FETCH_ALLOWED_NETWORKS": "10.0.0.0/8"}).inputs)
    assert intranet.public_addresses("10.1.2.3", 80) == ["10.1.2.3"]
