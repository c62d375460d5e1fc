"""The operator's records in an overlay: the pin and the reverted versions, written and read back, checked."""

from __future__ import annotations

from pathlib import Path

import pytest

from imagesearch import pins

AT = "2026-01-01T00:00:00+00:00"


def test_pin_round_trip_and_refusals(tmp_path: Path) -> None:
    assert pins.read_pin(tmp_path) is None
    pin = pins.Pin("20260101T000000Z", "bad results", "ops@test", AT)
    assert pins.write_pin(tmp_path, pin) == tmp_path / pins.PIN_FILE
    assert pins.read_pin(tmp_path) == pin
    assert pins.parse_pin((tmp_path / pins.PIN_FILE).read_text()) == pin
    assert pin.describe() == f"pinned to 20260101T000000Z by ops@test at {AT}: bad results"
    with pytest.raises(pins.PinError, match="needs a reason"):
        pins.write_pin(tmp_path, pins.Pin("20260101T000000Z", "  ", "ops@test", AT))
    (tmp_path / pins.PIN_FILE).write_text("version: 20260101T000000Z\n")
    with pytest.raises(pins.PinError, match="every entry needs the strings"):
        pins.read_pin(tmp_path)


def test_reverted_versions_accumulate_and_a_restored_one_leaves(tmp_path: Path) -> None:
    first = pins.Reverted("20260102T000000Z", "bad", "ops@test", AT)
    second = pins.Reverted("20260103T000000Z", "worse", "ops@test", AT)
    pins.add_reverted(tmp_path, [first])
    pins.add_reverted(tmp_path, [second])
    assert pins.read_reverted(tmp_path) == {first.version: first, second.version: second}
    pins.add_reverted(tmp_path, [], restored=first.version)
    assert list(pins.read_reverted(tmp_path)) == [second.version]
    (tmp_path / pins.REVERTED_FILE).write_text("not: a list\n")
    with pytest.raises(pins.PinError, match="does not hold a list"):
        pins.read_reverted(tmp_path)
    assert "@" in pins.operator() and pins.now().endswith("+00:00")
