"""docs/CONFIGURATION.md documents every setting: one table per settings group, in their order, naming each variable."""

from __future__ import annotations

import re
from pathlib import Path

from imagesearch.settings import variables_by_group

ROOT = Path(__file__).resolve().parents[2]
CONFIGURATION = (ROOT / "docs" / "CONFIGURATION.md").read_text()
ROW = re.compile(r"^\| (`IMAGESEARCH_\w+`( / `IMAGESEARCH_\w+`)*) \| [^|]+ \| [^|]+ \|$")


def group_tables() -> dict[str, list[str]]:
    """The table rows of each `## … (`settings.<group>`)` section, by group."""
    tables = {}
    for section in CONFIGURATION.split("\n## ")[1:]:
        heading, _, body = section.partition("\n")
        group = re.search(r"\(`settings\.(\w+)`\)$", heading)
        if group:
            tables[group.group(1)] = [line for line in body.splitlines() if line.startswith("|")]
    return tables


def test_every_setting_is_in_its_group_s_table_by_its_full_name() -> None:
    tables = group_tables()
    variables = variables_by_group()
    assert list(tables) == list(variables), "one configuration table per settings group, in their order"
    missing = [name for group, names in variables.items() for name in names if f"`{name}`" not in "\n".join(tables[group])]
    assert not missing, f"docs/CONFIGURATION.md's tables lack {missing}"


def test_every_row_names_settings_of_its_group_only() -> None:
    variables = variables_by_group()
    for group, rows in group_tables().items():
        assert rows[:2] == ["| variable | default | meaning |", "|---|---|---|"], group
        for row in rows[2:]:
            assert ROW.match(row), f"{group}: {row!r} is not `| \\`IMAGESEARCH_…\\` | default | meaning |`"
            named = re.findall(r"`(IMAGESEARCH_\w+)`", row.split(" | ")[0])
            assert set(named) <= set(variables[group]), f"{group}: {row!r} names {set(named) - set(variables[group])}"


def test_settings_rows_live_in_docs_configuration_only() -> None:
    """One settings table: a row merged into the README or another page instead is found here."""
    elsewhere = [f"{path.relative_to(ROOT)}: {line}" for path in [ROOT / "README.md", *(ROOT / "docs").glob("*.md")]
                 if path.name != "CONFIGURATION.md" for line in path.read_text().splitlines() if ROW.match(line)]
    assert not elsewhere, f"settings rows outside docs/CONFIGURATION.md: {elsewhere}"
