"""The local deploy plays Argo CD: a bump or a ``git revert`` rollback in git reaches the running server
with zero failed requests while a client keeps searching."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx

from tests.conftest import ROOT, SECOND_VERSION
from tests.serving.support import Client, cli

V2 = SECOND_VERSION


def test_bump_and_rollback_reach_the_server_without_a_failed_request(
        tmp_path: Path, models: Path, published_repository: tuple[Path, str], environment: dict[str, str]) -> None:
    v1 = published_repository[1]
    deploy = ("localdev.argocd", "--state-dir", str(tmp_path / "serving"), "--port", "0")

    def sync() -> dict[str, object]:
        return json.loads(cli(environment, *deploy))

    cli(environment, "tasks.operations.rollback", "init")
    cli(environment, "tasks.steps.commit_version", "--workspace", str(models / "runs" / v1))
    started = sync()
    assert (started["action"], started["version"]) == ("started", v1)
    client = Client(str(started["url"]))
    client.start()
    client.wait_for(v1)

    cli(environment, "tasks.steps.commit_version", "--workspace", str(models / "runs" / V2))
    rolled = sync()
    assert (rolled["action"], rolled["version"], rolled["previous"], rolled["pid"]) == ("rolled", V2, v1, started["pid"])
    client.wait_for(V2)
    assert httpx.get(f"{started['url']}/v1/index").json()["version"] == V2
    assert sync()["action"] == "unchanged"

    # The rollback is picked up by the polling loop, the way Argo CD notices a new commit.
    watch = subprocess.Popen([sys.executable, "-m", *deploy, "--watch", "--interval", "0.5"], cwd=ROOT, env=environment,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    cli(environment, "tasks.operations.rollback", "rollback", "--reason", "v2 misranks the test photos")
    client.wait_for(v1, timeout=120)

    assert client.stop() == [v1, V2, v1]
    assert client.failures == []
    assert len(client.versions) > 30
    assert sorted(path.name for path in (tmp_path / "serving" / "versions").iterdir()) == [v1, V2]
    stopped = json.loads(cli(environment, *deploy, "--stop"))
    assert (stopped["action"], stopped["pid"]) == ("stopped", started["pid"])
    output, _ = watch.communicate(timeout=30)  # --stop ends the loop too, or it would restart the server
    back = json.loads(output.strip().splitlines()[-1])
    assert (back["action"], back["version"], back["previous"]) == ("rolled", v1, V2)
