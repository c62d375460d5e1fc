"""Argo CD's part on one machine: render the overlay from git, fetch its index, start or roll the server.

    python -m localdev.argocd [--overlay gitops/overlays/local] [--gitops-repo URL] [--branch NAME]
                              [--state-dir data/serving] [--host H] [--port P] [--watch [--interval S]]
    python -m localdev.argocd --status | --stop

In production Argo CD does this job: it syncs the overlay to the cluster, and the Deployment's rolling
update (maxUnavailable 0, readiness only once an index is loaded) replaces pods whose ``fetch-index``
initContainer downloaded the old version with pods that downloaded the new one. On one machine this
command plays both parts for one server process:

1. clone or fetch the GitOps repo (settings: IMAGESEARCH_GITOPS_*) into ``<state-dir>/gitops``;
2. render the overlay with real kustomize (``kubectl kustomize``) and read the index version (the
   generated ConfigMap) and both containers' commands and env from the rendered Deployment;
3. run the ``fetch-index`` command with IMAGESEARCH_INDEX_DIR=<state-dir>/versions/<version>;
4. start the ``search`` command in the background (first time; pid and start time, port and admin token go
   to ``<state-dir>/state.json``) and wait for /readyz, or, if it is running, roll it with
   ``POST /admin/index`` — the server verifies and swaps the new index in atomically while it keeps
   answering, so a rollout or a ``git revert`` rollback costs no failed request.

``--watch`` repeats 1-4 every ``--interval`` seconds (Argo CD polls git the same way; like Argo CD's
self-heal it also restarts a server that died); ``--stop`` stops the server and a running ``--watch``.
Each run prints one JSON line saying what it did. Processes are found again and stopped with psutil
(:mod:`localdev.processes`). Local development only: the serving image does not ship this package.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import logging
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx

from imagesearch import gitops, kustomize
from imagesearch.errors import ImageSearchError
from imagesearch.settings import DATA_DIR, PROJECT_ROOT, Settings, SettingsError, get_settings
from localdev.processes import ProcessRef

log = logging.getLogger("localdev.argocd")


class DeployError(ImageSearchError):
    """The local deploy could not fetch, start or roll; a running server keeps its current index."""


@dataclass
class ServerState:
    pid: int
    started_at: float  # the process's start time (psutil): with the pid, its identity (a pid may be recycled)
    host: str
    port: int
    token: str
    version: str
    directory: str
    command: list[str]
    log: str

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def process(self) -> ProcessRef:
        return ProcessRef(self.pid, self.started_at)


def free_port(host: str) -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def local_command(command: list[str]) -> list[str]:
    """A container command run here: its ``python`` is this interpreter."""
    return [sys.executable, *command[1:]] if command and command[0] == "python" else list(command)


def process_env(container: kustomize.Container, **overrides: str) -> dict[str, str]:
    pythonpath = os.pathsep.join(p for p in (str(PROJECT_ROOT), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PYTHONPATH": pythonpath, **container.env, **overrides}


class LocalDeploy:
    def __init__(self, config: gitops.GitOpsConfig, state_dir: Path, host: str, port: int,
                 ready_timeout: float = 180.0) -> None:
        self.config = config
        self.state_dir = state_dir.absolute()
        self.host = host
        self.port = port
        self.ready_timeout = ready_timeout
        self.state_file = self.state_dir / "state.json"
        self.watch_file = self.state_dir / "watch.json"  # the running --watch loop, as a ProcessRef
        self.versions = self.state_dir / "versions"

    # State -----------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """One deploy at a time (a --watch loop and a manual run may overlap)."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        with (self.state_dir / ".lock").open("w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            yield

    def load_state(self) -> ServerState | None:
        if not self.state_file.is_file():
            return None
        return ServerState(**json.loads(self.state_file.read_text()))

    def save_state(self, state: ServerState) -> None:
        temp = self.state_file.with_suffix(".tmp")
        temp.write_text(json.dumps(asdict(state), indent=2))
        temp.chmod(0o600)  # holds the admin token
        temp.replace(self.state_file)

    @staticmethod
    def is_our_server(state: ServerState) -> bool:
        """Alive, and really the process we started (not a recycled pid)."""
        return state.process.alive()

    @staticmethod
    def healthy(state: ServerState) -> bool:
        try:
            return httpx.get(f"{state.url}/healthz", timeout=2.0).status_code == 200
        except httpx.HTTPError:
            return False

    # The four steps ----------------------------------------------------------------------------------
    def render(self) -> tuple[kustomize.Workload, str]:
        """The overlay at the branch tip, rendered: (what it runs, the GitOps commit)."""
        checkout = gitops.Checkout(self.config, self.state_dir / "gitops")
        commit = checkout.sync()
        overlay = gitops.Overlay(checkout).path
        if not overlay.is_dir():
            raise DeployError(f"the GitOps repo has no overlay {self.config.overlay}")
        return kustomize.read_workload(kustomize.render(overlay)), commit

    def fetch(self, workload: kustomize.Workload) -> Path:
        """Run the Deployment's fetch-index command into versions/<version>."""
        directory = self.versions / workload.version
        env = process_env(workload.fetch, IMAGESEARCH_INDEX_DIR=str(directory))
        result = subprocess.run(local_command(workload.fetch.command), cwd=PROJECT_ROOT, env=env,
                                capture_output=True, text=True, check=False)
        if result.returncode != 0:
            detail = (result.stderr.strip().splitlines() or [f"exit code {result.returncode}"])[-1]
            raise DeployError(f"{kustomize.FETCH_CONTAINER} failed for version {workload.version}: {detail}")
        log.info("fetched %s: %s", workload.version, result.stdout.strip())
        return directory

    def start(self, workload: kustomize.Workload, directory: Path) -> ServerState:
        command = local_command(workload.search.command)
        port = self.port or free_port(self.host)
        token = secrets.token_urlsafe(32)
        # One worker: POST /admin/index swaps the index of the process that answers it.
        env = process_env(workload.search, IMAGESEARCH_INDEX_DIR=str(directory), IMAGESEARCH_HOST=self.host,
                          IMAGESEARCH_PORT=str(port), IMAGESEARCH_ADMIN_TOKEN=token, IMAGESEARCH_WORKERS="1")
        log_path = self.state_dir / "server.log"
        with log_path.open("ab") as output:
            process = subprocess.Popen(command, cwd=PROJECT_ROOT, env=env, stdin=subprocess.DEVNULL, stdout=output,
                                       stderr=subprocess.STDOUT, start_new_session=True)
        state = ServerState(process.pid, ProcessRef.of(process.pid).started, self.host, port, token, workload.version,
                            str(directory), command, str(log_path))
        self.save_state(state)
        self.wait_ready(state, process)
        return state

    def wait_ready(self, state: ServerState, process: subprocess.Popen[bytes]) -> None:
        deadline = time.monotonic() + self.ready_timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise DeployError(f"the server exited with code {process.returncode}; see {state.log}")
            with contextlib.suppress(httpx.HTTPError):
                response = httpx.get(f"{state.url}/readyz", timeout=2.0)
                if response.status_code == 200 and response.json().get("version") == state.version:
                    return
            time.sleep(0.2)
        raise DeployError(f"the server did not become ready on {state.version} within {self.ready_timeout:g}s; "
                          f"see {state.log}")

    def roll(self, state: ServerState, version: str, directory: Path) -> ServerState:
        """Swap the running server to ``directory`` in place; it keeps serving the old index until then."""
        response = httpx.post(f"{state.url}/admin/index", json={"directory": str(directory)},
                              headers={"Authorization": f"Bearer {state.token}"}, timeout=self.ready_timeout)
        if response.status_code != 200:
            raise DeployError(f"the server refused version {version} (HTTP {response.status_code}: "
                              f"{response.text.strip()}); it keeps serving {state.version}")
        served = response.json().get("version")
        if served != version:
            raise DeployError(f"asked the server for {version} but it reports {served}")
        rolled = ServerState(**{**asdict(state), "version": version, "directory": str(directory)})
        self.save_state(rolled)
        return rolled

    def prune(self, *keep: str) -> None:
        if not self.versions.is_dir():
            return
        for directory in self.versions.iterdir():
            if directory.name not in keep:
                shutil.rmtree(directory, ignore_errors=True)

    # Commands ----------------------------------------------------------------------------------------
    def sync(self) -> dict[str, Any]:
        """Make the local server serve what the overlay names; what was done, as a summary."""
        with self.locked():
            workload, commit = self.render()
            summary: dict[str, Any] = {"overlay": self.config.overlay, "gitops_commit": commit,
                                       "version": workload.version}
            if not workload.version:
                return {**summary, "action": "none", "reason": "the overlay names no index version yet"}
            state = self.load_state()
            live = state if state is not None and self.is_our_server(state) else None
            command = local_command(workload.search.command)
            if live is not None and live.version == workload.version and live.command == command:
                return {**summary, "action": "unchanged", "url": live.url, "pid": live.pid}
            directory = self.fetch(workload)
            if live is not None and live.command == command:
                new_state, action, previous = self.roll(live, workload.version, directory), "rolled", live.version
            else:
                if live is not None:
                    log.warning("the search command changed: restarting the server")
                    live.process.stop()
                new_state, action, previous = self.start(workload, directory), "started", None
            self.prune(workload.version, previous or "")
            return {**summary, "action": action, "previous": previous, "url": new_state.url, "pid": new_state.pid}

    def running_watch(self) -> ProcessRef | None:
        """Another process's --watch loop that is still running, if any."""
        with contextlib.suppress(OSError, ValueError, TypeError, KeyError):
            watch = ProcessRef(**json.loads(self.watch_file.read_text()))
            if watch.pid != os.getpid() and watch.alive():
                return watch
        return None

    def stop_watch(self) -> None:
        """A running --watch would start the server again at its next poll: stop it first."""
        if (watch := self.running_watch()) is not None:
            watch.stop()
        self.watch_file.unlink(missing_ok=True)

    def stop(self) -> dict[str, Any]:
        self.stop_watch()
        with self.locked():
            state = self.load_state()
            if state is None:
                return {"action": "none", "reason": "no server state"}
            was_running = state.process.stop()
            self.state_file.unlink(missing_ok=True)
            return {"action": "stopped" if was_running else "cleared", "pid": state.pid, "version": state.version}

    def status(self) -> dict[str, Any]:
        state = self.load_state()
        if state is None:
            return {"running": False}
        return {"running": self.is_our_server(state) and self.healthy(state), "url": state.url, "pid": state.pid,
                "version": state.version, "log": state.log}

    def watch(self, interval: float) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.watch_file.write_text(json.dumps(asdict(ProcessRef.of(os.getpid()))))
        try:
            while True:
                try:
                    summary = self.sync()
                    if summary["action"] != "unchanged":
                        print(json.dumps(summary, sort_keys=True), flush=True)
                except (ImageSearchError, httpx.HTTPError, OSError) as exc:
                    # Like an Argo CD app going Degraded: say why, keep the server as it is, try again next poll.
                    print(f"deploy failed: {exc}", file=sys.stderr, flush=True)
                time.sleep(interval)
        finally:
            self.watch_file.unlink(missing_ok=True)


def parse_args(argv: list[str] | None, settings: Settings) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m localdev.argocd", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--overlay", help=f"overlay path in the GitOps repo (default {settings.gitops.overlay})")
    parser.add_argument("--gitops-repo", help=gitops.repo_option_help(settings))
    parser.add_argument("--branch", help=f"branch (default {settings.gitops.branch})")
    parser.add_argument("--state-dir", default=str(DATA_DIR / "serving"), help="checkout, fetched versions, server state")
    parser.add_argument("--host", default=settings.serving.host, help="the server's address (default IMAGESEARCH_HOST)")
    parser.add_argument("--port", type=int, default=settings.serving.port, help="the server's port; 0 picks a free one")
    parser.add_argument("--ready-timeout", type=float, default=180.0, help="seconds to wait for /readyz or a swap")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--watch", action="store_true", help="keep syncing every --interval seconds")
    mode.add_argument("--stop", action="store_true", help="stop the server")
    mode.add_argument("--status", action="store_true", help="print the server's state")
    parser.add_argument("--interval", type=float, default=10.0, help="seconds between polls with --watch")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s deploy %(levelname)s %(message)s", stream=sys.stderr)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    try:
        settings = get_settings()
    except SettingsError as exc:
        print(f"deploy failed: {exc}", file=sys.stderr)
        return 1
    args = parse_args(argv, settings)
    config = gitops.GitOpsConfig.from_settings(settings, url=args.gitops_repo, branch=args.branch, overlay=args.overlay)
    deployer = LocalDeploy(config, Path(args.state_dir), args.host, args.port, args.ready_timeout)
    try:
        if args.watch:
            with contextlib.suppress(KeyboardInterrupt):
                deployer.watch(args.interval)
            return 0
        summary = deployer.stop() if args.stop else deployer.status() if args.status else deployer.sync()
    except (ImageSearchError, httpx.HTTPError, OSError) as exc:
        print(f"deploy failed: {exc}", file=sys.stderr, flush=True)
        return 1
    print(json.dumps(summary, sort_keys=True), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
