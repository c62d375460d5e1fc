"""Hostile catalogs through the real pipeline steps: every bad row is a per-item failure with its reason.

Two real snapshot + preprocess runs over one hostile catalog each: one under the default network policy
(loopback refused, even though a live server listens there), one where the test explicitly allows
127.0.0.1 so that a real loopback server can redirect, trickle, stall and lie. Each row is one case.
"""

from __future__ import annotations

import io
import json
import os
import struct
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from imagesearch.catalog import read_catalog
from imagesearch.errors import CatalogError, InputRefusedError
from imagesearch.input_policy import InputPolicy
from imagesearch.settings import DATA_DIR, InputSettings
from tasks.workspace import LAYOUT, Workspace
from tests.security.hostile_server import serve
from tests.tasks.conftest import run_step


@dataclass(frozen=True)
class Case:
    name: str
    uri: str  # {port}: the hostile server's port; relative paths are files next to the catalog
    reason: str  # the expected per-item failure reason, or "ok"
    says: str = ""  # a fragment the failure message must contain


LOCAL_CASES = [
    Case("traversal-relative", "../../../../../../../../etc/passwd", "refused", "outside the allowed local roots"),
    Case("traversal-absolute", "/etc/passwd", "refused", "outside the allowed local roots"),
    Case("proc-environ", "file:///proc/self/environ", "refused", "outside the allowed local roots"),
    Case("symlink-out-of-root", "escape.png", "refused", "outside the allowed local roots"),
    Case("fifo-in-root", "pipe.png", "fetch_failed", "not a regular file"),
    Case("directory", "folder.png", "fetch_failed", "not a regular file"),
    Case("missing-file", "nothing-here.png", "missing", "no such file"),
    Case("ftp-scheme", "ftp://images.example.com/a.png", "refused", "scheme 'ftp' is not allowed"),
    Case("data-scheme", "data:image/png;base64,iVBORw0KGgo=", "refused", "scheme 'data' is not allowed"),
    Case("gopher-scheme", "gopher://127.0.0.1:{port}/_GET", "refused", "scheme 'gopher' is not allowed"),
    Case("other-bucket", "gs://another-project-private/secrets.png", "refused", "not in an allowed bucket"),
    Case("nul-byte-in-path", "evil\u0000.png", "refused", "malformed URI"),
    Case("malformed-ipv6-host", "https://[::1/a.png", "refused", "malformed URI"),
    Case("port-out-of-range", "https://images.example.com:99999/a.png", "refused", "malformed URI"),
    Case("decompression-bomb", "bomb.png", "too_large", "decompression bomb"),
    Case("huge-dimensions-small-file", "huge-dims.png", "too_large", "pixel limit"),
    Case("oversized-file", "oversized.png", "too_large", "byte limit"),
    Case("truncated-jpeg", "truncated.jpg", "truncated", "truncated"),
    Case("html-polyglot", "page.png", "not_an_image", "not an image in an accepted format"),
    Case("svg-as-png", "vector.png", "not_an_image", "not an image in an accepted format"),
    Case("empty-file", "empty.png", "not_an_image", ""),
    Case("tiny-image", "tiny.png", "too_small", "smaller than"),
    Case("png-zip-polyglot", "polyglot.png", "ok"),
    Case("odd-mode-16bit", "gray16.png", "ok"),
    Case("odd-mode-cmyk", "cmyk.jpg", "ok"),
    Case("non-ascii-file-name", "café.png", "ok"),
    Case("idna-host", "https://bücher.example/café.png", "refused", "cannot resolve host xn--bcher-kva.example"),
    Case("invalid-idna-host", "https://a..bé/x.png", "refused", "not a valid internationalised domain name"),
]
SSRF_CASES = [
    Case("cloud-metadata", "http://169.254.169.254/computeMetadata/v1/", "refused", "169.254.169.254"),
    Case("live-loopback", "http://127.0.0.1:{port}/ok.png", "refused", "loopback"),
    Case("private-10", "https://10.0.0.1/a.png", "refused", "private"),
    Case("private-192-168", "https://192.168.1.1/a.png", "refused", "private"),
    Case("cgnat-100-64", "https://100.64.0.1/a.png", "refused", "private"),
    Case("ipv6-loopback", "http://[::1]:{port}/ok.png", "refused", "::1"),
    Case("ipv6-unique-local", "https://[fd00::1]/a.png", "refused", "fd00::1"),
    Case("ipv4-mapped-ipv6", "http://[::ffff:127.0.0.1]:{port}/ok.png", "refused", "127.0.0.1"),
    Case("decimal-ip", "http://2130706433:{port}/ok.png", "refused", "127.0.0.1"),
    Case("hex-ip", "http://0x7f000001:{port}/ok.png", "refused", "127.0.0.1"),
    Case("octal-ip", "http://0177.0.0.1:{port}/ok.png", "refused", "127.0.0.1"),
    Case("all-zeros", "http://0.0.0.0:{port}/ok.png", "refused", "0.0.0.0"),
    Case("localhost-name", "http://localhost:{port}/ok.png", "refused", "localhost"),
]
LOOPBACK_ALLOWED_CASES = [
    Case("allowed-loopback-fetch", "http://127.0.0.1:{port}/ok.png", "ok"),
    Case("redirect-within-allowed", "http://127.0.0.1:{port}/redirect?to=/ok.png", "ok"),
    Case("redirect-to-metadata", "http://127.0.0.1:{port}/redirect?to=http://169.254.169.254/latest/meta-data/",
         "refused", "169.254.169.254"),
    Case("redirect-to-private", "http://127.0.0.1:{port}/redirect?to=https://10.1.2.3/x.png", "refused", "10.1.2.3"),
    Case("redirect-to-ipv6-loopback", "http://127.0.0.1:{port}/redirect?to=http://[::1]:{port}/ok.png", "refused", "::1"),
    Case("redirect-to-file", "http://127.0.0.1:{port}/redirect?to=file:///etc/passwd", "refused", "non-HTTP"),
    Case("redirect-loop", "http://127.0.0.1:{port}/loop", "refused", "more than 3 redirects"),
    Case("slow-host-1-byte-per-s", "http://127.0.0.1:{port}/trickle.png", "too_slow", "bytes/s minimum"),
    Case("stalled-host", "http://127.0.0.1:{port}/stall.png", "timeout", "deadline"),
    Case("lying-content-length", "http://127.0.0.1:{port}/huge.png", "too_large", "byte limit"),
    Case("http-404", "http://127.0.0.1:{port}/gone.png", "missing", "404"),
    Case("non-ascii-path", "http://127.0.0.1:{port}/café.png", "ok"),
    Case("redirect-to-non-ascii-path", "http://127.0.0.1:{port}/redirect?to=/café.png", "ok"),
]


def png_header_claiming(width: int, height: int) -> bytes:
    """A tiny real PNG whose header claims ``width`` x ``height`` (the classic decompression bomb)."""
    buffer = io.BytesIO()
    Image.new("L", (16, 16)).save(buffer, "PNG")
    data = bytearray(buffer.getvalue())
    ihdr = 8  # after the signature: length(4) 'IHDR'(4) data(13) crc(4)
    data[ihdr + 8 : ihdr + 16] = struct.pack(">II", width, height)
    data[ihdr + 21 : ihdr + 25] = struct.pack(">I", zlib.crc32(bytes(data[ihdr + 4 : ihdr + 21])))
    return bytes(data)


def encoded(image: Image.Image, fmt: str) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt)
    return buffer.getvalue()


def good_png(seed: int = 0) -> bytes:
    return encoded(Image.effect_noise((64, 64), 40 + seed).convert("RGB"), "PNG")


def write_hostile_files(folder: Path) -> None:
    (folder / "escape.png").symlink_to("/etc/passwd")
    os.mkfifo(folder / "pipe.png")
    (folder / "folder.png").mkdir()
    (folder / "bomb.png").write_bytes(png_header_claiming(20_000, 20_000))
    (folder / "huge-dims.png").write_bytes(png_header_claiming(8_000, 8_000))
    (folder / "oversized.png").write_bytes(good_png() + os.urandom(3_000_000))
    jpeg = encoded(Image.effect_noise((256, 256), 60).convert("RGB"), "JPEG")
    (folder / "truncated.jpg").write_bytes(jpeg[: len(jpeg) // 2])
    (folder / "page.png").write_bytes(b"<!doctype html><script>alert(document.cookie)</script>")
    (folder / "vector.png").write_bytes(b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>")
    (folder / "empty.png").write_bytes(b"")
    (folder / "tiny.png").write_bytes(encoded(Image.new("RGB", (4, 4)), "PNG"))
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("payload.sh", "echo pwned")
    (folder / "polyglot.png").write_bytes(good_png(1) + archive.getvalue())
    (folder / "gray16.png").write_bytes(encoded(Image.linear_gradient("L").convert("I;16"), "PNG"))
    (folder / "cmyk.jpg").write_bytes(encoded(Image.new("CMYK", (64, 64), (10, 200, 30, 0)), "JPEG"))
    (folder / "good.png").write_bytes(good_png(2))
    (folder / "café.png").write_bytes(good_png(4))


def write_catalog(folder: Path, cases: list[Case], port: int) -> Path:
    rows = [Case("good", "good.png", "ok"), *cases]
    lines = [
        json.dumps({"item_id": case.name, "image_uri": case.uri.format(port=port), "title": case.name, "category": "c",
                    "price": 1, "on_sale": False, "updated_at": "2026-01-01T00:00:00Z"})
        for case in rows
    ]
    catalog = folder / "catalog.jsonl"
    catalog.write_text("\n".join(lines) + "\n")
    return catalog


@dataclass
class PipelineRun:
    summary: dict[str, Any]
    failures: dict[str, dict[str, Any]]
    ok: set[str]


def run_hostile_catalog(folder: Path, cases: list[Case], env: dict[str, str]) -> PipelineRun:
    """snapshot + preprocess (the real steps, real argv) over a catalog made of ``cases``."""
    write_hostile_files(folder)
    base = {"IMAGESEARCH_MAX_FAILURE_RATIO": "1", "IMAGESEARCH_MAX_IMAGE_BYTES": "2000000",
            "IMAGESEARCH_IMAGE_SCHEMES": "file,gs,https,http", "IMAGESEARCH_FETCH_TIMEOUT_S": "4"}
    with serve(good_png(3)) as port, pytest.MonkeyPatch.context() as patch:
        for name, value in {**base, **env}.items():
            patch.setenv(name, value)
        catalog = write_catalog(folder, cases, port)
        workspace, repository = folder / "ws", folder / "repo"
        snapshot = run_step("snapshot", workspace, "--catalog", str(catalog), "--repository", str(repository))
        assert snapshot.code == 0, snapshot.stderr
        result = run_step("preprocess", workspace, "--shard", "0")
    assert result.code == 0, result.stderr
    store = Workspace(str(workspace))
    failures = {row["item_id"]: row for row in store.read_jsonl("preprocess/00000/failures.jsonl")}
    ok = {row["item_id"] for row in store.read_jsonl("preprocess/00000/items.jsonl")}
    return PipelineRun(result.summary, failures, ok)


@pytest.fixture(scope="module")
def default_network_run(tmp_path_factory: pytest.TempPathFactory) -> PipelineRun:
    return run_hostile_catalog(tmp_path_factory.mktemp("hostile-default"), LOCAL_CASES + SSRF_CASES, {})


@pytest.fixture(scope="module")
def loopback_allowed_run(tmp_path_factory: pytest.TempPathFactory) -> PipelineRun:
    env = {"IMAGESEARCH_FETCH_ALLOWED_NETWORKS": "127.0.0.1/32"}  # this test's server only; ::1 stays refused
    return run_hostile_catalog(tmp_path_factory.mktemp("hostile-loopback"), LOOPBACK_ALLOWED_CASES, env)


def check_case(run: PipelineRun, case: Case) -> None:
    assert "good" in run.ok  # the shard completes around the bad rows
    if case.reason == "ok":
        assert case.name in run.ok and case.name not in run.failures
        return
    assert case.name not in run.ok
    failure = run.failures[case.name]
    assert failure["reason"] == case.reason, failure
    assert case.says in failure["message"], failure


@pytest.mark.parametrize("case", LOCAL_CASES + SSRF_CASES, ids=lambda case: case.name)
def test_hostile_row_under_the_default_policy(default_network_run: PipelineRun, case: Case) -> None:
    check_case(default_network_run, case)


@pytest.mark.parametrize("case", LOOPBACK_ALLOWED_CASES, ids=lambda case: case.name)
def test_hostile_server_behind_an_allowed_address(loopback_allowed_run: PipelineRun, case: Case) -> None:
    check_case(loopback_allowed_run, case)


def test_file_contents_never_reach_a_failure_message(default_network_run: PipelineRun) -> None:
    messages = json.dumps(default_network_run.failures)
    assert "root:" not in messages and "PATH=" not in messages and "alert(" not in messages


def test_refused_rows_count_against_the_failure_ratio(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMAGESEARCH_MAX_FAILURE_RATIO", "0.5")
    (tmp_path / "good.png").write_bytes(good_png())
    catalog = write_catalog(tmp_path, SSRF_CASES[:3], port=9)
    workspace = tmp_path / "ws"
    assert run_step("snapshot", workspace, "--catalog", str(catalog), "--repository", str(tmp_path / "repo")).code == 0
    result = run_step("preprocess", workspace, "--shard", "0")
    assert result.code == 1 and "3 of 4 images failed (75% > 50%)" in result.stderr


# --- catalogs: only allowed prefixes, the format from the parsed path, no contents echoed --------------------------------

def test_default_policy_refuses_loopback_and_temporary_folders(tmp_path: Path) -> None:
    policy = InputPolicy.for_images(InputSettings())
    for host in ("127.0.0.1", "localhost", "169.254.169.254", "::1"):
        with pytest.raises(InputRefusedError, match="private, loopback or link-local"):
            policy.public_addresses(host, 80)
    with pytest.raises(InputRefusedError, match="outside the allowed local roots"):
        policy.confine(tmp_path / "a.png")
    assert policy.confine(DATA_DIR / "catalogs" / "x.png") == (DATA_DIR / "catalogs" / "x.png").resolve()
    (tmp_path / "catalog.csv").write_text("item_id\n")
    with pytest.raises(CatalogError, match="refused by the input policy"):
        read_catalog(str(tmp_path / "catalog.csv"), InputPolicy.for_catalogs(InputSettings()))


CATALOG_CASES = [
    ("proc-environ-fragment", "file:///proc/self/environ#.csv", {}, "unknown catalog format ''"),
    ("passwd-query", "file:///etc/passwd?x=.csv", {}, "unknown catalog format ''"),
    ("malformed-url", "https://[::1/catalog.csv", {}, "malformed catalog URI"),
    ("symlink-to-proc", "{tmp}/link.csv", {}, "refused by the input policy"),
    ("outside-prefixes", "{tmp}/catalog.csv", {"catalog_prefixes": str(DATA_DIR)}, "refused by the input policy"),
    ("other-bucket", "gs://someone-else/catalog.csv", {"catalog_prefixes": "gs://catalogs/shop/"}, "not in an allowed bucket"),
    ("bucket-prefix-escape", "gs://catalogs/other/catalog.csv", {"catalog_prefixes": "gs://catalogs/shop/"},
     "not in an allowed bucket"),
    ("http-not-in-prefixes", "https://127.0.0.1/catalog.csv", {"catalog_prefixes": "https://catalogs.example.com/feeds"},
     "not an allowed image host"),
    ("http-scheme-not-listed", "http://catalogs.example.com/feeds/c.csv",
     {"catalog_prefixes": "https://catalogs.example.com/feeds"}, "scheme 'http' is not allowed"),
]


@pytest.mark.parametrize(("name", "uri", "overrides", "says"), CATALOG_CASES, ids=[case[0] for case in CATALOG_CASES])
def test_hostile_catalog_uri_is_refused(tmp_path: Path, name: str, uri: str, overrides: dict[str, str], says: str) -> None:
    (tmp_path / "link.csv").symlink_to("/proc/self/environ")
    (tmp_path / "catalog.csv").write_text("item_id\n")
    policy = InputPolicy.for_catalogs(InputSettings(catalog_prefixes=overrides.get("catalog_prefixes", str(tmp_path))))
    with pytest.raises(CatalogError, match=says) as raised:
        read_catalog(uri.format(tmp=tmp_path), policy)
    assert "PATH=" not in str(raised.value)


def test_snapshot_step_refuses_proc_environ_without_echoing_it(tmp_path: Path) -> None:
    result = run_step("snapshot", tmp_path / "ws", "--catalog", "file:///proc/self/environ#.csv")
    assert result.code == 2 and "unknown catalog format" in result.stderr
    assert "PATH=" not in result.stderr and "HOME=" not in result.stderr


def test_csv_header_error_does_not_echo_the_header(tmp_path: Path) -> None:
    (tmp_path / "catalog.csv").write_text("GIT_PASSWORD=hunter2,AWS_SECRET=xyz\nitem,1\n")
    with pytest.raises(CatalogError, match=r"lacks column\(s\) item_id.*it has 2 column") as raised:
        read_catalog(str(tmp_path / "catalog.csv"), InputPolicy.for_catalogs(InputSettings(catalog_prefixes=str(tmp_path))))
    assert "hunter2" not in str(raised.value) and "AWS_SECRET" not in str(raised.value)


def test_a_snapshot_with_malformed_rows_completes_and_counts_each(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Very deep JSON and a number of thousands of digits are rejected rows with a reason, never a failed snapshot."""
    monkeypatch.setenv("IMAGESEARCH_MAX_FAILURE_RATIO", "1")
    (tmp_path / "good.png").write_bytes(good_png())
    good = json.dumps({"item_id": "good", "image_uri": "good.png", "title": "t", "category": "c", "price": 1,
                       "on_sale": False, "updated_at": "2026-01-01T00:00:00Z"})
    deep = '{"item_id": ' + "[" * 100_000 + "]" * 100_000 + "}"
    huge_number = good.replace('"price": 1', '"price": ' + "9" * 5_000).replace('"good"', '"huge"')
    (tmp_path / "catalog.jsonl").write_text("\n".join([deep, good, huge_number]) + "\n")
    workspace = tmp_path / "ws"
    result = run_step("snapshot", workspace, "--catalog", str(tmp_path / "catalog.jsonl"), "--repository", str(tmp_path / "repo"))
    assert result.code == 0, result.stderr
    assert result.summary["items"] == 1 and result.summary["rejected_rows"] == 2
    rejected = Workspace(str(workspace)).read_jsonl(LAYOUT.REJECTED.key)
    assert [(row["line"], row["reason"].split(":")[0]) for row in rejected] == [(1, "invalid JSON"), (3, "invalid JSON")]
    assert "nested too deep" in rejected[0]["reason"] and "4300 digits" in rejected[1]["reason"]
