"""``python -m tasks.operations.models``: list, pin, unpin and roll back model versions in a real repository folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from imagesearch import model_versions
from imagesearch.repository import ModelRepository, open_repository
from imagesearch.settings import get_settings
from tasks.operations import models
from tests.imagesearch.model_support import backbone_of, publish_version

V1, V2, V3 = "20260105T000000Z", "20260106T000000Z", "20260107T000000Z"


@pytest.fixture
def repo(tmp_path: Path) -> ModelRepository:
    repo = open_repository(str(tmp_path / "repo"))
    backbone = backbone_of(get_settings())
    for seed, version in enumerate((V1, V2, V3)):
        publish_version(repo, tmp_path / "build", version, backbone, seed=seed, passed=version != V3)
    return repo


def cli(capsys: pytest.CaptureFixture[str], repo: ModelRepository, *argv: str) -> tuple[int, str, str]:
    code = models.main([*argv, "--repository", repo.uri])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def chosen(capsys: pytest.CaptureFixture[str], repo: ModelRepository) -> dict[str, object]:
    code, out, _ = cli(capsys, repo, "list", "--json")
    assert code == 0
    return json.loads(out)


def test_list_shows_the_newest_gated_version_as_chosen(repo: ModelRepository, capsys: pytest.CaptureFixture[str]) -> None:
    listing = chosen(capsys, repo)
    assert [row["version"] for row in listing["versions"]] == [V1, V2, V3]
    assert listing["chosen"] == V2 and listing["reason"] == "the newest gated version" and listing["pin"] is None
    code, out, _ = cli(capsys, repo, "list")
    assert code == 0 and f"{V2}  " in out and "<- chosen" in out and "(failed its gate)" in out


def test_rollback_pins_the_previous_gated_version_and_unpin_skips_the_reverted(
        repo: ModelRepository, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, repo, "rollback", "--reason", "category search got worse", "--by", "ops@host")
    assert code == 0 and f"from model version {V2} to {V1}" in out
    listing = chosen(capsys, repo)
    assert listing["chosen"] == V1 and listing["pin"] == V1
    assert [row["version"] for row in listing["versions"] if row["reverted"]] == [V2]
    pin = model_versions.read_pin(repo)
    assert pin is not None and (pin.reason, pin.by) == ("category search got worse", "ops@host")
    code, _, err = cli(capsys, repo, "rollback", "--reason", "again")
    assert code == 1 and f"no gated model version before {V1}" in err
    assert cli(capsys, repo, "unpin")[0] == 0
    assert chosen(capsys, repo)["chosen"] == V1  # V2 was reverted: never chosen automatically again
    assert cli(capsys, repo, "pin", V2, "--reason", "fixed upstream")[0] == 0  # a person may still choose it
    assert chosen(capsys, repo)["chosen"] == V2


def test_pin_none_and_refusals(repo: ModelRepository, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(capsys, repo, "pin", "none", "--reason", "heads off for the sale")[0] == 0
    listing = chosen(capsys, repo)
    assert listing["chosen"] is None and listing["pin"] == "none"
    code, _, err = cli(capsys, repo, "pin", "20260109T000000Z", "--reason", "x")
    assert code == 1 and "not committed" in err
    code, _, err = cli(capsys, repo, "pin", V1, "--reason", " ")
    assert code == 1 and "a pin needs a reason" in err
    assert model_versions.read_pin(repo).version == "none"  # type: ignore[union-attr]
    code, _, err = cli(capsys, repo, "rollback", "--reason", "x")
    assert code == 1 and "no model version is in use" in err
