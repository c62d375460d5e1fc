"""The README stays true: every setting is documented, and the two commands are the Makefile's."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

from imagesearch.settings import PREFIX, Settings

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def documented(name: str) -> bool:
    parts = name.upper().split("_")
    return f"`{PREFIX}{name.upper()}`" in README or any(f"`_{'_'.join(parts[i:])}`" in README for i in range(len(parts)))


def test_every_setting_is_in_the_configuration_table() -> None:
    missing = [PREFIX + f.name.upper() for f in fields(Settings) if not documented(f.name)]
    assert not missing, f"README lacks {missing}"


def test_the_two_commands_exist() -> None:
    makefile = (ROOT / "Makefile").read_text()
    for target in ("demo", "test", "airflow"):
        assert f"make {target}" in README and f"\n{target}:" in makefile
    assert (ROOT / ".ci" / "run").read_text().strip().endswith("make test")
