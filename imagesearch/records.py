"""Typed records read back from JSON (a run's ``run.json``, a manifest's ``model.config``): every field named,
none unknown, each of its type. A record that leaves a field out is refused, never filled with a default."""

from __future__ import annotations

from typing import Any, TypeVar

import msgspec

T = TypeVar("T", bound=msgspec.Struct)


class RecordError(ValueError):
    """A record is not exactly the fields of its type."""


def read_record(record: object, cls: type[T], what: str) -> T:
    """``record`` as a ``cls`` (a msgspec Struct with ``forbid_unknown_fields``), or :class:`RecordError` naming
    what is wrong: an unknown field, a missing one (even one with a default) or a value of the wrong type."""
    try:
        value = msgspec.convert(record, type=cls)
    except msgspec.ValidationError as exc:
        raise RecordError(f"{what} is not a valid {cls.__name__} record: {exc}") from None
    missing = _missing(msgspec.to_builtins(value), record)
    if missing:
        raise RecordError(f"{what} is not a valid {cls.__name__} record: missing {', '.join(missing)}")
    return value


def _missing(full: Any, given: Any, prefix: str = "") -> list[str]:
    """The keys of ``full`` (recursively, as dotted paths) that ``given`` does not have."""
    if not isinstance(full, dict) or not isinstance(given, dict):
        return []
    found = []
    for key, value in full.items():
        if key not in given:
            found.append(f"{prefix}{key}")
        else:
            found += _missing(value, given[key], f"{prefix}{key}.")
    return found
