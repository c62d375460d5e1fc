"""The project's shape: no import cycles, the numpy-only step pods never load torch, and the tests mirror the
source tree."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from tasks.pipeline import STEPS

ROOT = Path(__file__).resolve().parent.parent
NOT_SOURCE = {"tests", "bench", "docker", "gitops", "data", "docs"}  # benchmarks are never tests


def source_packages() -> tuple[str, ...]:
    """The project's top-level folders of Python source (imagesearch, tasks, serving, plugins, dags, scripts...)."""
    return tuple(sorted(path.name for path in ROOT.iterdir() if path.is_dir() and not path.name.startswith(".")
                        and path.name not in NOT_SOURCE and any(path.rglob("*.py"))))


PACKAGES = source_packages()


def project_modules() -> dict[str, Path]:
    modules = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = path
    return modules


def _type_checking_only(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def imported_names(module: str, path: Path) -> set[str]:
    """Every module ``module`` imports, at the top or inside a function (a lazy import is still an edge), except
    under ``if TYPE_CHECKING``; ``from a import b`` counts as both ``a`` and ``a.b``."""
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    names: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if _type_checking_only(child):
                continue
            if isinstance(child, ast.Import):
                names.update(alias.name for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                base_parts = package[: len(package) - child.level + 1] if child.level else []
                base = ".".join([*base_parts, *([child.module] if child.module else [])])
                names.add(base)
                names.update(f"{base}.{alias.name}" for alias in child.names)
            visit(child)

    visit(ast.parse(path.read_text(), str(path)))
    return names


def import_graph() -> dict[str, set[str]]:
    modules = project_modules()
    return {name: {dep for dep in imported_names(name, path) if dep in modules and dep != name}
            for name, path in modules.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in sorted(graph[node]):
            if target not in index:
                connect(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return found


def test_the_graph_sees_the_imports_that_make_a_cycle() -> None:
    graph = import_graph()
    assert {"imagesearch.uri", "imagesearch.input_policy", "imagesearch.errors"} <= graph["imagesearch.uri_reader"]
    assert "imagesearch.gcs" in graph["imagesearch.stamps"]  # a lazy import, inside a function
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycles() -> None:
    assert cycles(import_graph()) == []


@pytest.mark.parametrize("module", ["tasks.steps.snapshot", "tasks.steps.preprocess", "tasks.steps.build_index",
                                    "tasks.steps.publish", "tasks.steps.commit_version", "tasks.steps.evaluate_model",
                                    "tasks.steps.publish_model", "serving.fetch"])
def test_numpy_only_commands_never_import_torch(module: str) -> None:
    """Their pods (and the serving pod's initContainer) would pay torch's import time and memory for nothing
    (figures: docs/BENCHMARKS.md)."""
    probe = (f"import runpy, sys\nsys.argv = ['{module}', '--help']\n"
             f"try:\n    runpy.run_module('{module}', run_name='__main__')\nexcept SystemExit as exit:\n"
             "    assert exit.code == 0, exit.code\n"
             "print(sorted(name for name in sys.modules if name.split('.')[0] in ('torch', 'torchvision')))\n")
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=300,
                            env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    assert "usage:" in result.stdout
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_every_module_has_its_test_module() -> None:
    """``<package>/<path>/<module>.py`` is tested in ``tests/<package>/<path>/test_<module>.py``."""
    assert {"imagesearch", "tasks", "serving", "plugins", "dags", "scripts"} <= set(PACKAGES)
    modules = [path for path in project_modules().values() if path.name != "__init__.py"]
    missing = [str(path.relative_to(ROOT)) for path in modules
               if not (ROOT / "tests" / path.relative_to(ROOT).parent / f"test_{path.name}").is_file()]
    assert missing == []


STEP_MODULES = sorted({step.command[2] for step in STEPS})


@pytest.mark.parametrize("module", STEP_MODULES)
def test_every_step_flag_is_declared_once(module: str) -> None:
    """A step's options are its ``Step`` entry's (tasks.pipeline); its module declares none of its own."""
    source = project_modules()[module].read_text()
    assert "add_argument" not in source and "ArgumentParser" not in source
    for step in STEPS:
        flags = ["--workspace", "--shard", *(arg.flag for arg in step.args)]
        assert len(flags) == len(set(flags)), step.name


def test_no_step_imports_another() -> None:
    """A step shares code with another only through a helper module (tasks/*.py that is no step)."""
    graph = import_graph()
    assert {module: sorted(graph[module] & set(STEP_MODULES)) for module in STEP_MODULES} == \
        {module: [] for module in STEP_MODULES}


def test_only_training_imports_the_training_package() -> None:
    """imagesearch.training may use torch to train a head; the rest of imagesearch (shared with serving and the
    numpy-only pods) never imports it: a head reaches them as exported numpy weights."""
    graph = import_graph()
    importers = sorted(module for module, imported in graph.items()
                       if module.startswith("imagesearch.") and not module.startswith("imagesearch.training")
                       and any(name.startswith("imagesearch.training") for name in imported))
    assert importers == []
    assert "imagesearch.training.evaluation" in graph["imagesearch.training.head"]  # the graph sees the package
