"""docs/BENCHMARKS.md has one section per benchmark script, each with its command and the date of its run."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BENCHMARKS = (ROOT / "docs" / "BENCHMARKS.md").read_text()
TOOLS = {"loadgen.py", "rusage.py", "abuse_connections.py"}  # used by benchmarks (abuse.py --connections), not benchmarks


def sections() -> dict[str, str]:
    """Section bodies by the `bench/<script>.py` their heading names."""
    found = {}
    for section in BENCHMARKS.split("\n## ")[1:]:
        heading, _, body = section.partition("\n")
        for script in re.findall(r"`bench/(\w+\.py)", heading):
            assert script not in found, f"two sections of bench/{script}: one section per script, its latest run"
            found[script] = body
    return found


def test_every_benchmark_script_has_a_section_with_its_command_and_date() -> None:
    scripts = {path.name for path in (ROOT / "bench").glob("*.py")} - {"__init__.py"} - TOOLS
    found = sections()
    assert sorted(scripts - set(found)) == [], "benchmarks without a section in docs/BENCHMARKS.md"
    assert sorted(set(found) - scripts) == [], "sections of scripts that bench/ does not have"
    for script, body in found.items():
        assert re.search(r"^Measured \d{4}-\d{2}-\d{2}", body, flags=re.M), f"{script}: no 'Measured <date>' line"
        commands = "\n".join(re.findall(r"^```\n(.*?)^```", body, flags=re.S | re.M))
        assert f"bench/{script}" in commands, f"{script}: no command block that runs it"


def test_the_tools_are_named() -> None:
    for tool in TOOLS:
        assert (ROOT / "bench" / tool).exists() and f"`bench/{tool}`" in BENCHMARKS
