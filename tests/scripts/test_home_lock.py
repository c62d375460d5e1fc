"""One user of a local AIRFLOW_HOME at a time: make airflow (serve) and make demo (dags-test) refuse to share one."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from scripts.home_lock import HomeInUse, HomeLock


def test_a_second_user_is_refused_with_who_holds_it_until_it_is_released(tmp_path: Path) -> None:
    refused = r"is in use by make airflow \(scripts.airflow_local serve\), pid \d+: a scheduler and `airflow dags test` must not"
    with HomeLock(tmp_path, "make airflow (scripts.airflow_local serve)"), pytest.raises(HomeInUse, match=refused):
        HomeLock(tmp_path, "make demo (scripts.airflow_local dags-test)").__enter__()
    with HomeLock(tmp_path, "make demo (scripts.airflow_local dags-test)"):  # released on exit
        pass


def test_a_child_given_the_lock_holds_it_after_its_parent_let_go(tmp_path: Path) -> None:
    with HomeLock(tmp_path, "make airflow (scripts.airflow_local serve)") as lock:
        child = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE,
                                 pass_fds=(lock.fileno(),))
    try:
        with pytest.raises(HomeInUse):  # e.g. a scheduler left running by a killed launcher
            HomeLock(tmp_path, "make demo (scripts.airflow_local dags-test)").__enter__()
    finally:
        child.communicate(b"", timeout=30)
    with HomeLock(tmp_path, "make demo (scripts.airflow_local dags-test)"):
        pass
