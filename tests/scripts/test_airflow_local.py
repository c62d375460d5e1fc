"""The local Airflow launcher: every Airflow process gets this repo's DAGs and plugins, loopback only, SQLite in
its home; the DB is migrated once and the UI password kept private. (``tests/dags/test_rest_api.py`` runs it.)"""

from __future__ import annotations

import json
import stat
from pathlib import Path

from scripts import airflow_local
from scripts.airflow_local import PASSWORDS_FILE, USER, airflow_env, prepare, write_api_token


def test_the_environment_of_every_airflow_process(tmp_path: Path) -> None:
    env = airflow_env(tmp_path, port=18080, parallelism=2, base={"PATH": "/usr/bin", "PYTHONPATH": "/elsewhere"})
    root = str(airflow_local.PROJECT_ROOT)
    assert env["AIRFLOW_HOME"] == str(tmp_path) and env["AIRFLOW__CORE__DAGS_FOLDER"] == f"{root}/dags"
    assert env["PYTHONPATH"].split(":") == [root, "/elsewhere"] and env["PATH"].endswith(":/usr/bin")
    assert env["AIRFLOW__API__HOST"] == "127.0.0.1" and env["AIRFLOW__API__BASE_URL"] == "http://127.0.0.1:18080"
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == f"sqlite:///{tmp_path / 'airflow.db'}"
    assert env["AIRFLOW__CORE__PARALLELISM"] == "2" and env["AIRFLOW__CORE__LOAD_EXAMPLES"] == "False"


def test_prepare_migrates_once_and_keeps_the_password_private(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = airflow_env(home, port=18081)
    password = prepare(home, env)
    assert (home / "airflow.db").is_file() and password
    assert stat.S_IMODE((home / PASSWORDS_FILE).stat().st_mode) == 0o600
    assert json.loads((home / PASSWORDS_FILE).read_text()) == {USER: password}
    assert prepare(home, env) == password  # migrating again keeps it
    write_api_token(home / "token", "secret-token")
    assert stat.S_IMODE((home / "token").stat().st_mode) == 0o600
    assert (home / "token").read_text() == "secret-token\n"
