"""Records read back from JSON: exactly their type's fields, each of its type."""

from __future__ import annotations

import msgspec
import pytest

from imagesearch.records import RecordError, read_record


class Inner(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    size: int = 3


class Outer(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    name: str
    inner: Inner


def test_a_whole_record_reads_back() -> None:
    assert read_record({"name": "a", "inner": {"size": 4}}, Outer, "x") == Outer("a", Inner(4))


@pytest.mark.parametrize(("record", "message"), [
    ({"name": "a", "inner": {"size": 4}, "extra": 1}, "Object contains unknown field `extra`"),
    ({"name": "a", "inner": {"size": 4, "colour": "red"}}, "unknown field `colour` - at `\\$.inner`"),
    ({"inner": {"size": 4}}, "missing required field `name`"),
    ({"name": "a", "inner": {}}, "missing inner.size"),  # a field with a default is still required in a record
    ({"name": 1, "inner": {"size": 4}}, "Expected `str`, got `int`"),
    (["a"], "Expected `object`, got `array`"),
])
def test_unknown_missing_or_mistyped_fields_are_refused(record: object, message: str) -> None:
    with pytest.raises(RecordError, match=f"^the thing is not a valid Outer record: .*{message}"):
        read_record(record, Outer, "the thing")
