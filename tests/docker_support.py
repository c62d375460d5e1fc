"""Kubernetes containers run by the docker engine as rendered: command, args, env, securityContext, mounts.

A container spec (camelCase, as ``kubectl kustomize`` renders it or as the Kubernetes client serializes a
pod) becomes one ``docker run``:

- ``command`` -> ``--entrypoint`` + the rest, ``args`` after it (Kubernetes semantics over the image's CMD);
- ``envFrom`` (ConfigMaps) then ``env`` -> ``--env`` (``env`` wins, as in Kubernetes);
- ``runAsUser``/``runAsGroup`` (container, else pod) -> ``--user``, ``fsGroup`` -> ``--group-add``;
  ``runAsNonRoot`` refuses uid 0;
- ``readOnlyRootFilesystem`` -> ``--read-only``, ``capabilities`` -> ``--cap-drop``/``--cap-add``,
  ``allowPrivilegeEscalation: false`` -> ``no-new-privileges``, memory limits -> ``--memory``;
- ``emptyDir`` volumes -> a directory of the test (mode 0777, as the kubelet makes them) shared by the
  pod's containers, ``readOnly`` mounts -> ``:ro``; named ports -> a published loopback port, or, with
  ``host_network``, the host's own loopback (the container then reaches the test's servers on 127.0.0.1).
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import free_port

# `make test` sets it: there the container tests must run, never skip.
REQUIRE = os.environ.get("IMAGESEARCH_CONTAINER_TESTS") == "require"
CONTAINER_NUMBERS = itertools.count()  # container names are unique per engine
MEMORY_UNITS = {"Ki": "k", "Mi": "m", "Gi": "g", "K": "k", "M": "m", "G": "g"}


def docker() -> str:
    """The docker CLI, once an engine answers; otherwise skip (fail under ``make test``)."""
    found = shutil.which("docker")
    if found is not None and subprocess.run([found, "info"], capture_output=True, timeout=60).returncode == 0:
        return found
    message = "no docker engine answers: `make images` installs and starts one"
    if REQUIRE:
        pytest.fail(message)
    pytest.skip(message)


def require_image(image: str) -> None:
    if subprocess.run([docker(), "image", "inspect", image], capture_output=True, timeout=60).returncode != 0:
        message = f"image {image} is not built: run `make images`"
        if REQUIRE:
            pytest.fail(message)
        pytest.skip(message)


def memory(quantity: str) -> str:
    for suffix, unit in MEMORY_UNITS.items():
        if quantity.endswith(suffix):
            return quantity.removesuffix(suffix) + unit
    return quantity


def security_argv(pod_context: Mapping[str, Any], context: Mapping[str, Any]) -> list[str]:
    merged = {**pod_context, **context}
    argv: list[str] = []
    user = merged.get("runAsUser")
    if merged.get("runAsNonRoot") and user in (None, 0):
        raise AssertionError("runAsNonRoot with no non-zero runAsUser: the kubelet would refuse to start it")
    if user is not None:
        argv += ["--user", f"{user}:{merged.get('runAsGroup', user)}"]
    if "fsGroup" in pod_context:
        argv += ["--group-add", str(pod_context["fsGroup"])]
    if context.get("readOnlyRootFilesystem"):
        argv.append("--read-only")
    capabilities = context.get("capabilities") or {}
    argv += [flag for cap in capabilities.get("drop") or [] for flag in ("--cap-drop", cap)]
    argv += [flag for cap in capabilities.get("add") or [] for flag in ("--cap-add", cap)]
    if context.get("allowPrivilegeEscalation") is False:
        argv += ["--security-opt", "no-new-privileges"]
    return argv


def named_container(pod: Mapping[str, Any], group: str, name: str) -> dict[str, Any]:
    """The container ``name`` of a pod spec's ``containers`` or ``initContainers`` (``group``)."""
    return next(c for c in pod[group] if c["name"] == name)


def environment(container: Mapping[str, Any], config_maps: Mapping[str, Mapping[str, str]],
                secrets: Mapping[str, Mapping[str, str]], base: Mapping[str, str] | None = None) -> dict[str, str]:
    """``base`` (what the cluster itself gives a pod), then ``envFrom`` in order, then ``env``: a later source wins."""
    env: dict[str, str] = dict(base or {})
    for source in container.get("envFrom") or []:
        if source.get("configMapRef"):
            env.update(config_maps[source["configMapRef"]["name"]])
        if source.get("secretRef"):
            env.update(secrets[source["secretRef"]["name"]])
    for item in container.get("env") or []:
        assert "value" in item, f"env {item['name']} comes from a source the test cannot resolve: {item}"
        env[item["name"]] = str(item["value"])
    return env


@dataclass
class PodOnDocker:
    """One pod's containers, run one after the other with ``docker run``, sharing the pod's emptyDirs."""

    pod: Mapping[str, Any]  # the pod spec (Deployment template's spec, or a Pod's spec)
    scratch: Path
    config_maps: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    secrets: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    extra_mounts: Sequence[str] = ()  # `docker -v` specs for what a cluster would provide (the model repository)
    # What the cluster gives every container besides the manifests (e.g. the GCS endpoint); any source overrides it.
    cluster_env: Mapping[str, str] = field(default_factory=dict)
    host_network: bool = False  # the host's network: containers and the test's servers talk over 127.0.0.1
    names: list[str] = field(default_factory=list)

    def volume_dirs(self) -> dict[str, Path]:
        dirs = {}
        for volume in self.pod.get("volumes") or []:
            assert "emptyDir" in volume, f"volume {volume['name']}: only emptyDir is run here"
            path = self.scratch / "volumes" / volume["name"]
            path.mkdir(parents=True, exist_ok=True)
            path.chmod(0o777)
            dirs[volume["name"]] = path
        return dirs

    def run_argv(self, container: Mapping[str, Any], *, name: str, publish: Mapping[int, int] | None = None) -> list[str]:
        volumes = self.volume_dirs()
        argv = [docker(), "run", "--name", name, "--pull", "never"]
        argv += security_argv(self.pod.get("securityContext") or {}, container.get("securityContext") or {})
        if self.host_network:
            argv += ["--network", "host"]
        for key, value in environment(container, self.config_maps, self.secrets, self.cluster_env).items():
            argv += ["--env", f"{key}={value}"]
        for mount in container.get("volumeMounts") or []:
            suffix = ":ro" if mount.get("readOnly") else ""
            argv += ["--volume", f"{volumes[mount['name']]}:{mount['mountPath']}{suffix}"]
        for mount in self.extra_mounts:
            argv += ["--volume", mount]
        for container_port, host_port in (publish or {}).items():
            assert not self.host_network or container_port == host_port, "on the host network a port is the host's"
            if not self.host_network:
                argv += ["--publish", f"127.0.0.1:{host_port}:{container_port}"]
        if limit := ((container.get("resources") or {}).get("limits") or {}).get("memory"):
            argv += ["--memory", memory(limit)]
        if container.get("workingDir"):
            argv += ["--workdir", container["workingDir"]]
        command, args = list(container.get("command") or []), list(container.get("args") or [])
        if command:
            argv += ["--entrypoint", command[0], container["image"], *command[1:], *args]
        else:
            argv += [container["image"], *args]
        return argv

    def run(self, container: Mapping[str, Any], timeout: float = 900) -> subprocess.CompletedProcess[str]:
        """Runs a container to its end (an initContainer, a step): its exit code and output."""
        name = self.name(container)
        try:
            return subprocess.run(self.run_argv(container, name=name), capture_output=True, text=True, timeout=timeout)
        finally:
            self.remove(name)

    def start(self, container: Mapping[str, Any], publish: Mapping[int, int]) -> str:
        """Starts a long-running container (the server) in the background; its name."""
        name = self.name(container)
        argv = self.run_argv(container, name=name, publish=publish)
        argv.insert(argv.index("run") + 1, "--detach")
        subprocess.run(argv, check=True, capture_output=True, text=True, timeout=120)
        return name

    def name(self, container: Mapping[str, Any]) -> str:
        name = f"imagesearch-test-{container['name']}-{os.getpid()}-{next(CONTAINER_NUMBERS)}"
        self.names.append(name)
        return name

    def remove(self, name: str) -> None:
        subprocess.run([docker(), "rm", "--force", "--volumes", name], capture_output=True, timeout=120)

    def remove_all(self) -> None:
        for name in self.names:
            self.remove(name)


def state(name: str) -> dict[str, Any]:
    result = subprocess.run([docker(), "inspect", "--format", "{{json .State}}", name], capture_output=True, text=True,
                            check=True, timeout=60)
    return json.loads(result.stdout)


def logs(name: str) -> str:
    result = subprocess.run([docker(), "logs", name], capture_output=True, text=True, timeout=60)
    return result.stdout + result.stderr


def probe_url(container: Mapping[str, Any], probe: str, publish: Mapping[int, int]) -> str:
    """The loopback URL of a rendered ``httpGet`` probe (a named port resolved through ``ports``)."""
    action = container[probe]["httpGet"]
    port = action["port"]
    if isinstance(port, str):
        port = next(p["containerPort"] for p in container["ports"] if p.get("name") == port)
    return f"http://127.0.0.1:{publish[port]}{action['path']}"


def wait_until_ready(name: str, container: Mapping[str, Any], publish: Mapping[int, int]) -> None:
    """Polls the readiness probe every ``periodSeconds`` for as long as the startup probe allows."""
    readiness, startup = container["readinessProbe"], container.get("startupProbe") or container["readinessProbe"]
    deadline = time.monotonic() + startup.get("periodSeconds", 10) * startup.get("failureThreshold", 3)
    url = probe_url(container, "readinessProbe", publish)
    while time.monotonic() < deadline:
        if not state(name)["Running"]:
            raise AssertionError(f"container {container['name']} stopped before it was ready:\n{logs(name)[-3000:]}")
        try:
            if httpx.get(url, timeout=readiness.get("timeoutSeconds", 1)).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(readiness.get("periodSeconds", 10))
    raise AssertionError(f"{url} never answered 200:\n{logs(name)[-3000:]}")


def publish_ports(container: Mapping[str, Any], host_network: bool = False) -> dict[int, int]:
    """container port -> loopback port: a free one, or on the host network the container's own."""
    return {port["containerPort"]: port["containerPort"] if host_network else free_port()
            for port in container.get("ports") or []}
