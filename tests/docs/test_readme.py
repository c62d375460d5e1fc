"""The README stays a ten-minute read that is true: its size, the two commands, and the "where to change what" table."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
MAX_README_BYTES = 15 * 1024


def where_to_change_rows() -> list[list[str]]:
    """The cells of the "Where to change what" table's rows (header and rule excluded)."""
    section = README.split("\n## Where to change what\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("|")]
    return [[cell.strip() for cell in row.strip("|").split("|")] for row in rows[2:]]


def test_the_readme_is_short() -> None:
    size = len(README.encode())
    assert size <= MAX_README_BYTES, f"README.md is {size} bytes; move detail into docs/ (at most {MAX_README_BYTES})"


def test_the_two_commands_exist() -> None:
    makefile = (ROOT / "Makefile").read_text()
    for target in ("demo", "test", "airflow"):
        assert f"make {target}" in README and f"\n{target}:" in makefile
    assert (ROOT / ".ci" / "run").read_text().strip().endswith("make test")


def test_where_to_change_what_names_one_existing_place_each() -> None:
    rows = where_to_change_rows()
    assert len(rows) >= 10
    changes = [row[0] for row in rows]
    assert len(set(changes)) == len(changes), "a change is listed twice"
    for change, place, *_ in rows:
        paths = re.findall(r"`([^`]+)`", place)
        assert len(paths) == 1 and place == f"`{paths[0]}`", f"{change!r}: name exactly one place, got {place!r}"
        assert (ROOT / paths[0]).exists(), f"{change!r}: {paths[0]} does not exist"


def test_where_to_change_what_names_only_existing_code() -> None:
    """Paths named in the third column (`serving/service.py`, `tasks/promote.py`) exist too."""
    for change, _, there in where_to_change_rows():
        for name in re.findall(r"`([\w./-]+\.(?:py|yaml|json))`", there):
            assert (ROOT / name).exists(), f"{change!r}: {name} does not exist"
