"""The README stays true: every setting is documented, and the two commands are the Makefile's."""

from __future__ import annotations

import re
from pathlib import Path

from imagesearch.settings import variables_by_group

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def group_tables() -> dict[str, str]:
    """The configuration section's table rows, by the group its heading names (`settings.<group>`)."""
    section = README.split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    parts = re.split(r"^### .*\(`settings\.(\w+)`\)$", section, flags=re.M)
    return {group: "\n".join(line for line in body.splitlines() if line.startswith("|"))
            for group, body in zip(parts[1::2], parts[2::2], strict=True)}


def test_every_setting_is_in_its_group_s_table_by_its_full_name() -> None:
    tables = group_tables()
    variables = variables_by_group()
    assert list(tables) == list(variables), "one configuration table per settings group, in their order"
    missing = [name for group, names in variables.items() for name in names if f"`{name}`" not in tables[group]]
    assert not missing, f"README's configuration tables lack {missing}"


def test_the_two_commands_exist() -> None:
    makefile = (ROOT / "Makefile").read_text()
    for target in ("demo", "test", "airflow"):
        assert f"make {target}" in README and f"\n{target}:" in makefile
    assert (ROOT / ".ci" / "run").read_text().strip().endswith("make test")
