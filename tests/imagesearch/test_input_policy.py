"""The input policy from settings: catalogs and images only from the allowed roots, buckets, hosts and networks."""

from __future__ import annotations

import ipaddress
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


TRANSITION_FORMS = {
    "ipv4-mapped-loopback": "::ffff:127.0.0.1",
    "ipv4-mapped-metadata": "::ffff:169.254.169.254",
    "ipv4-compatible-loopback": "::127.0.0.1",
    "ipv4-compatible-public": "::93.184.215.14",  # deprecated form: refused whatever it carries
    "nat64-metadata": "64:ff9b::169.254.169.254",
    "nat64-private": "64:ff9b::10.0.0.1",
    "nat64-local-use": "64:ff9b:1::93.184.215.14",
    "6to4-private": "2002:0a00:0001::1",
    "6to4-metadata": "2002:a9fe:a9fe::1",
    "teredo": "2001:0:4136:e378:8000:63bf:3fff:fdd2",
    "unspecified": "::",
    "site-local-deprecated": "fec0::1",
    "discard-only": "100::1",
    "documentation": "2001:db8::1",
}


@pytest.mark.parametrize("name", list(TRANSITION_FORMS))
def test_ipv6_transition_forms_of_refused_addresses_are_refused(name: str) -> None:
    with pytest.raises(InputRefusedError, match="resolves to"):
        InputPolicy().public_addresses(TRANSITION_FORMS[name], 80)


@pytest.mark.parametrize("public", ["::ffff:93.184.215.14", "64:ff9b::93.184.215.14", "2002:5db8:d70e::1", "2606:4700::1"])
def test_transition_forms_of_public_addresses_pass(public: str) -> None:
    assert [ipaddress.ip_address(a) for a in InputPolicy().public_addresses(public, 443)] == [ipaddress.ip_address(public)]


def test_the_refusal_names_the_embedded_address() -> None:
    with pytest.raises(InputRefusedError, match=r"an IPv6 form of 169\.254\.169\.254"):
        InputPolicy().public_addresses("64:ff9b::a9fe:a9fe", 80)


PREFIX_POLICY_SETTINGS = {"IMAGESEARCH_CATALOG_PREFIXES": "https://catalogs.example/feeds/"}


@pytest.mark.parametrize("url", [
    "https://catalogs.example/feeds/shop.csv",
    "https://CATALOGS.example:443/feeds/shop.csv",  # host case, default port
    "https://catalogs.example/%66eeds/shop.csv",  # an escaped unreserved character
    "https://catalogs.example/feeds/./daily/../shop.csv",  # dot segments that stay inside
])
def test_catalog_urls_under_the_prefix_after_normalisation_pass(url: str) -> None:
    InputPolicy.for_catalogs(Settings.from_env(PREFIX_POLICY_SETTINGS).inputs).check_url(url)


@pytest.mark.parametrize(("url", "says"), [
    ("https://catalogs.example/feeds/../private/shop.csv", "not under an allowed prefix"),
    ("https://catalogs.example/feeds/%2e%2e/private/shop.csv", "not under an allowed prefix"),
    ("https://catalogs.example/feeds/%2E%2e/%2e%2E/x.csv", "not under an allowed prefix"),
    ("https://catalogs.example/feeds/.%2e/private/shop.csv", "not under an allowed prefix"),
    ("https://catalogs.example/feeds%2f..%2fprivate/shop.csv", "encoded '/'"),
    ("https://catalogs.example/feeds/..%5cprivate/shop.csv", "encoded '/'"),
    ("https://catalogs.example/feedsX/shop.csv", "not under an allowed prefix"),
    ("https://catalogs.example:8443/feeds/shop.csv", "not under an allowed prefix"),
])
def test_catalog_urls_escaping_the_prefix_are_refused(url: str, says: str) -> None:
    with pytest.raises(InputRefusedError, match=says):
        InputPolicy.for_catalogs(Settings.from_env(PREFIX_POLICY_SETTINGS).inputs).check_url(url)
