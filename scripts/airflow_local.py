"""Airflow on this machine, for this repo's dags/ and plugins/ (SQLite, LocalExecutor, simple auth).

    python -m scripts.airflow_local serve [--port 8080] [--unpause]  # make airflow: UI + scheduler, Ctrl-C stops all
    python -m scripts.airflow_local dags-test [--conf JSON]          # make demo: one run of image_index (airflow dags test)
    eval "$(python -m scripts.airflow_local env)"                    # make airflow's settings, for any airflow command

The two keep separate state: ``serve`` uses ``IMAGESEARCH_AIRFLOW_HOME`` (default ``data/airflow``) and
``dags-test`` ``IMAGESEARCH_AIRFLOW_DEMO_HOME`` (default ``data/airflow-demo``), both git-ignored, each with its
own SQLite DB; a scheduler on the DB of an `airflow dags test` run would fail or skip that run's tasks. Each
holds its home's lock while it runs (:mod:`scripts.home_lock`), so pointing both at one home (``--home``) is
refused with a message instead. A local GitOps repo (``IMAGESEARCH_GITOPS_REPO_URL``, default
``data/gitops.git``) is created from gitops/ if missing.

``serve`` pauses the DAG before the scheduler starts (``--unpause`` or ``IMAGESEARCH_AIRFLOW_UNPAUSE=true``
unpauses it instead): an hourly DAG left unpaused by a trigger form's "Unpause on trigger" would otherwise
start a full, deploying run as soon as Airflow is back. It runs the api-server, scheduler and dag-processor
(and the triggerer when Kubernetes steps defer), each in its own process group with its log in
``$AIRFLOW_HOME/logs/<component>.log``, prints the UI's URL and login, and on Ctrl-C (or SIGTERM) stops
every process they started.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import shlex
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO

import httpx
import psutil

from imagesearch import gitops
from imagesearch.settings import PROJECT_ROOT, Settings, get_settings
from scripts.home_lock import HomeLock

USER = "admin"
API_TOKEN_FILE = "run-note-api-token"  # the run_note task's REST API token (plugins/run_note.py)
DAG_ID = "image_index"
PASSWORDS_FILE = "simple_auth_manager_passwords.json.generated"
COMPONENTS = ("api-server", "scheduler", "dag-processor")
# The scheduler's and triggerer's log servers would listen on every interface at fixed ports (8793, 8794), which
# a second Airflow on the machine also wants; the api-server reads task logs from $AIRFLOW_HOME/logs on this disk.
COMPONENT_FLAGS = {"scheduler": ("--skip-serve-logs",), "triggerer": ("--skip-serve-logs",)}
PLUGINS_FOLDER = PROJECT_ROOT / "plugins" / "airflow_plugins"  # only AirflowPlugin files; the rest is a library
STOP_GRACE_S = 30.0
READY_TIMEOUT_S = 180.0


def airflow_bin() -> str:
    return str(Path(sys.executable).with_name("airflow"))


def airflow_env(home: Path, *, port: int = 8080, parallelism: int = 4, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of every Airflow process: this repo's DAGs and plugins, SQLite in ``home``."""
    env = dict(os.environ if base is None else base)
    url = f"http://127.0.0.1:{port}"
    env.update({
        "AIRFLOW_HOME": str(home),
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")]),
        "PYTHONPATH": os.pathsep.join(p for p in (str(PROJECT_ROOT), env.get("PYTHONPATH", "")) if p),
        "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(PLUGINS_FOLDER),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        # Parsing the DAG imports Airflow's Kubernetes client: on a busy 2-core machine that outlasts the 30 s default.
        "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": "120",
        "AIRFLOW__DAG_PROCESSOR__DAG_FILE_PROCESSOR_TIMEOUT": "180",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": str(parallelism),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{USER}:admin",
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__BASE_URL": url,
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{url}/execution/",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "30",
    })
    return env


def prepare(home: Path, env: Mapping[str, str]) -> str:
    """Create or migrate the metadata DB (writing airflow.cfg and its secrets once); the UI password."""
    home.mkdir(parents=True, exist_ok=True)
    migrate = subprocess.run([airflow_bin(), "db", "migrate"], env=env, cwd=PROJECT_ROOT, capture_output=True, text=True)
    if migrate.returncode != 0:
        raise RuntimeError(f"`airflow db migrate` failed:\n{(migrate.stdout + migrate.stderr)[-3000:]}")
    passwords = home / PASSWORDS_FILE
    if not passwords.exists():
        passwords.write_text(json.dumps({USER: secrets.token_urlsafe(12)}) + "\n")
        passwords.chmod(0o600)
    return json.loads(passwords.read_text())[USER]


def ensure_gitops_repo(settings: Settings) -> None:
    """Create the local bare GitOps repo that ``deploy`` pushes to from gitops/, once (a remote one is left alone)."""
    config = gitops.GitOpsConfig.from_settings(settings)
    repository = settings.storage.model_repository
    if gitops.local_repo_path(config.url) is not None and gitops.bootstrap(config, model_repository=repository):
        print(f"created the local GitOps repo {config.url} from gitops/", flush=True)


def wait_until_healthy(url: str, processes: Mapping[str, subprocess.Popen[bytes]], timeout_s: float = READY_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if dead := [name for name, process in processes.items() if process.poll() is not None]:
            raise RuntimeError(f"{', '.join(dead)} exited during startup")
        try:
            with urllib.request.urlopen(f"{url}/api/v2/monitor/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(1)
    raise RuntimeError(f"the api-server did not answer at {url} within {timeout_s:.0f}s")


def pause_before_start(env: Mapping[str, str]) -> None:
    """Pause the DAG in the DB before any scheduler runs (a new DAG is created paused anyway)."""
    result = subprocess.run([airflow_bin(), "dags", "pause", DAG_ID], env=env, cwd=PROJECT_ROOT, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"`airflow dags pause {DAG_ID}` failed:\n{(result.stdout + result.stderr)[-3000:]}")


def api_token(url: str, password: str) -> str:
    response = httpx.post(f"{url}/auth/token", json={"username": USER, "password": password}, timeout=30)
    response.raise_for_status()
    return response.json()["access_token"]


def write_api_token(path: Path, token: str) -> None:
    path.touch(mode=0o600)
    path.write_text(token + "\n")


def unpause_when_parsed(url: str, token: str, timeout_s: float = READY_TIMEOUT_S) -> None:
    """Unpause the DAG through the REST API once the dag-processor has stored it."""
    with httpx.Client(base_url=f"{url}/api/v2", headers={"Authorization": f"Bearer {token}"}, timeout=30) as client:
        deadline = time.monotonic() + timeout_s
        while client.get(f"/dags/{DAG_ID}").status_code == 404:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{DAG_ID} was not parsed within {timeout_s:.0f}s, so it stays paused")
            time.sleep(2)
        client.patch(f"/dags/{DAG_ID}", json={"is_paused": False}).raise_for_status()


class Components:
    """Airflow components as process groups; stopping them also stops everything they started."""

    def __init__(self, env: Mapping[str, str], logs: Path, lock: HomeLock) -> None:
        self.env = dict(env)
        self.logs = logs
        self.lock = lock
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self._files: list[IO[bytes]] = []

    def start(self, names: Sequence[str]) -> None:
        self.logs.mkdir(parents=True, exist_ok=True)
        for name in names:
            log = (self.logs / f"{name}.log").open("ab")
            self._files.append(log)
            # Each component inherits the home's lock: while any of them lives, even if this launcher was killed,
            # `airflow dags test` is refused this home.
            self.processes[name] = subprocess.Popen([airflow_bin(), name, *COMPONENT_FLAGS.get(name, ())], env=self.env,
                                                    cwd=PROJECT_ROOT,
                                                    stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                                    pass_fds=(self.lock.fileno(),))

    def exited(self) -> list[str]:
        return [name for name, process in self.processes.items() if process.poll() is not None]

    def stop(self, grace_s: float = STOP_GRACE_S) -> None:
        tree: list[psutil.Process] = []
        for process in self.processes.values():
            try:
                parent = psutil.Process(process.pid)
                tree += [parent, *parent.children(recursive=True)]
            except psutil.NoSuchProcess:
                continue
        for process in self.processes.values():
            with contextlib.suppress(ProcessLookupError, psutil.NoSuchProcess):
                os.killpg(process.pid, signal.SIGTERM)
        _, alive = psutil.wait_procs(tree, timeout=grace_s)
        for leftover in alive:  # ignored SIGTERM, or left the group (a step's own process group)
            with contextlib.suppress(ProcessLookupError, psutil.NoSuchProcess):
                leftover.kill()
        psutil.wait_procs(alive, timeout=5)
        for process in self.processes.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=5)
        for log in self._files:
            log.close()


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def serve(home: Path, port: int, parallelism: int, unpause: bool) -> int:
    with HomeLock(home, "make airflow (scripts.airflow_local serve)") as lock:
        return _serve(home, port, parallelism, unpause, lock)


def _serve(home: Path, port: int, parallelism: int, unpause: bool, lock: HomeLock) -> int:
    settings = get_settings()
    env = airflow_env(home, port=port, parallelism=parallelism)
    token_file = home / API_TOKEN_FILE
    env.update({"IMAGESEARCH_AIRFLOW_API_URL": env["AIRFLOW__API__BASE_URL"],
                "IMAGESEARCH_AIRFLOW_API_TOKEN_FILE": str(token_file)})
    password = prepare(home, env)
    ensure_gitops_repo(settings)
    pause_before_start(env)
    names = [*COMPONENTS, *(["triggerer"] if settings.pipeline.runner == "kubernetes" and settings.kubernetes.deferrable else [])]
    components = Components(env, home / "logs", lock)
    for signum in (signal.SIGINT, signal.SIGTERM):  # explicitly: a background job starts with SIGINT ignored
        signal.signal(signum, _raise_interrupt)
    url = env["AIRFLOW__API__BASE_URL"]
    try:
        components.start(names)
        print(f"starting {', '.join(names)} (logs: {home / 'logs'}/<component>.log) ...", flush=True)
        wait_until_healthy(url, components.processes)
        token = api_token(url, password)
        write_api_token(token_file, token)
        if unpause:
            unpause_when_parsed(url, token)
        schedule = "unpaused: runs on its schedule" if unpause else "paused: triggered runs only (--unpause to schedule)"
        print(f"\nAirflow is up: {url}/dags/{DAG_ID}\n  login: {USER} / {password}\n"
              f"  runner: {settings.pipeline.runner}, model repository: {settings.storage.model_repository}\n"
              f"  {DAG_ID} is {schedule}\n"
              "  Ctrl-C stops every Airflow process.\n", flush=True)
        while not (dead := components.exited()):
            time.sleep(1)
        print(f"{', '.join(dead)} exited; see {home / 'logs'}; stopping the others", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nstopping Airflow ...", flush=True)
        return 0
    except (RuntimeError, httpx.HTTPError) as exc:
        print(f"error: {exc}; see {home / 'logs'}", file=sys.stderr)
        return 1
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):  # a second Ctrl-C must not cut the shutdown short
            signal.signal(signum, signal.SIG_IGN)
        components.stop()
        print("Airflow stopped.", flush=True)


def dags_test(home: Path, conf: str | None, dag_id: str = DAG_ID) -> int:
    """``airflow dags test image_index`` (or ``dag_id``): one run, every task in this process, the local runner by default."""
    with HomeLock(home, "make demo (scripts.airflow_local dags-test)"):
        env = airflow_env(home)
        prepare(home, env)
        ensure_gitops_repo(get_settings())
        command = [airflow_bin(), "dags", "test", dag_id, *(["--conf", conf] if conf else [])]
        print(f"$ {shlex.join(command)} (AIRFLOW_HOME={home})", flush=True)
        return subprocess.run(command, env=env, cwd=PROJECT_ROOT).returncode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--home", type=Path, default=None,
                        help="AIRFLOW_HOME (default: IMAGESEARCH_AIRFLOW_DEMO_HOME for dags-test, else IMAGESEARCH_AIRFLOW_HOME)")
    commands = parser.add_subparsers(dest="command", required=True)
    serve_parser = commands.add_parser("serve", help="run Airflow until Ctrl-C")
    serve_parser.add_argument("--port", type=int, default=8080)
    serve_parser.add_argument("--parallelism", type=int, default=4)
    serve_parser.add_argument("--unpause", action="store_true", default=None,
                              help=f"unpause {DAG_ID} so it runs on its schedule (default: IMAGESEARCH_AIRFLOW_UNPAUSE, false)")
    test_parser = commands.add_parser("dags-test", help=f"run {DAG_ID} once with `airflow dags test`")
    test_parser.add_argument("--conf", help='the run\'s params as JSON, e.g. \'{"limit": 100, "deploy": false}\'')
    test_parser.add_argument("--dag", default=DAG_ID, help=f"the DAG to run (default {DAG_ID})")
    commands.add_parser("env", help="print this Airflow's environment as shell exports")
    args = parser.parse_args(argv)
    settings = get_settings()
    home = (args.home or Path(settings.airflow.demo_home if args.command == "dags-test" else settings.airflow.home)).resolve()
    try:
        if args.command == "serve":
            return serve(home, args.port, args.parallelism, settings.airflow.unpause if args.unpause is None else True)
        if args.command == "dags-test":
            return dags_test(home, args.conf, args.dag)
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    env = airflow_env(home)
    for key in sorted(k for k in env if k.startswith("AIRFLOW") or k in ("PATH", "PYTHONPATH")):
        print(f"export {key}={shlex.quote(env[key])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
