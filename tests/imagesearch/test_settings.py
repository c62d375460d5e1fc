import re
import subprocess
import sys
from pathlib import Path

import pytest

from imagesearch.settings import (
    PREFIX,
    KubernetesSettings,
    ServingSettings,
    Settings,
    SettingsError,
    get_settings,
    variable_names,
)
from tests.conftest import ROOT

# Where operators and manifests name settings by their variables.
NAMED_IN = ("README.md", "Makefile", "docs", "docker", "gitops", "dags", "plugins", "tasks", "serving", "scripts", "bench",
            "imagesearch")
NOT_SETTINGS = {"IMAGESEARCH_CONTAINER_TESTS"}  # the Makefile's switch for the container tests


def test_defaults_and_environment_overrides_by_group() -> None:
    settings = Settings.from_env({"IMAGESEARCH_MODEL_REPOSITORY": "gs://b/p", "IMAGESEARCH_SHARD_SIZE": "50",
                                  "IMAGESEARCH_MAX_FAILURE_RATIO": "0.5", "IMAGESEARCH_RUNNER": "kubernetes",
                                  "IMAGESEARCH_KUBERNETES_DEFERRABLE": "false", "IMAGESEARCH_GITOPS_BRANCH": "live",
                                  "IMAGESEARCH_AIRFLOW_UNPAUSE": "yes", "IMAGESEARCH_ALERT_EMAIL_TO": "ops@example.com"})
    assert settings.storage.model_repository == "gs://b/p"
    pipeline = settings.pipeline
    assert (pipeline.shard_size, pipeline.max_failure_ratio, pipeline.runner) == (50, 0.5, "kubernetes")
    assert settings.kubernetes.deferrable is False and settings.gitops.branch == "live" and settings.airflow.unpause is True
    assert settings.alerts.email_to == "ops@example.com"
    assert Settings.from_env({"IMAGESEARCH_BACKBONE": "efficientnet-lite2"}).pipeline.backbone == "efficientnet-lite2"
    defaults = Settings.from_env({})
    assert defaults.pipeline.backbone == "efficientnet-lite0"
    assert defaults.pipeline.runner == "local" and defaults.kubernetes.deferrable is True and defaults.gitops.branch == "main"


def test_a_given_group_replaces_the_environment_s() -> None:
    settings = Settings.from_env({"IMAGESEARCH_PORT": "9000", "IMAGESEARCH_SHARD_SIZE": "7"},
                                 serving=ServingSettings(host="0.0.0.0"))
    assert (settings.serving.host, settings.serving.port, settings.pipeline.shard_size) == ("0.0.0.0", 8000, 7)
    assert settings.serving.search_page() == "http://0.0.0.0:8000/"


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [("SHARD_SIZE", "many", "valid integer"), ("RUNNER", "docker", "'local', 'kubernetes' or 'gke'"),
     ("MAX_FAILURE_RATIO", "2", "less than or equal to 1"), ("MIN_RECALL_AT_10", "-0.1", "greater than or equal to 0"),
     ("CURRENCY", "dollars", "ISO 4217"), ("FILTERED_SEARCH_MAX_ROWS", "50", "at least 100, the largest k"),
     ("FETCH_TIMEOUT_S", "0", "greater than 0"), ("FETCH_MAX_REDIRECTS", "-1", "greater than or equal to 0"),
     ("WORKERS", "0", "greater than or equal to 1"), ("BODY_READ_TIMEOUT_S", "0", "greater than 0"),
     ("KUBERNETES_DEFERRABLE", "maybe", "valid boolean"), ("KUBERNETES_GPU_COUNT", "", "valid integer"),
     ("BACKBONE", "resnet50", "must be a registered backbone (efficientnet-lite0, efficientnet-lite1, ")],
)
def test_invalid_values_are_explained_by_their_variable(name: str, value: str, message: str) -> None:
    with pytest.raises(SettingsError, match=f"^IMAGESEARCH_{name}={value!r} is not valid: .*{re.escape(message)}"):
        Settings.from_env({f"IMAGESEARCH_{name}": value})


def test_every_bad_variable_is_named_at_once() -> None:
    with pytest.raises(SettingsError) as raised:
        Settings.from_env({"IMAGESEARCH_PORT": "http", "IMAGESEARCH_KUBERNETES_RUN_AS_USER": "root"})
    assert "IMAGESEARCH_PORT='http'" in str(raised.value) and "IMAGESEARCH_KUBERNETES_RUN_AS_USER='root'" in str(raised.value)


def test_every_setting_has_one_variable_and_a_description() -> None:
    names = variable_names()
    assert len(names) == len(set(names)) and all(name.startswith(PREFIX) for name in names)
    for group_name, group in Settings.model_fields.items():
        for field_name, field in group.annotation.model_fields.items():  # type: ignore[union-attr]
            assert field.description, f"{group_name}.{field_name} has no description"
    assert KubernetesSettings.model_fields["image"].alias == "IMAGESEARCH_KUBERNETES_IMAGE"


def test_every_variable_that_operators_set_is_a_setting() -> None:
    files = [ROOT / name for name in NAMED_IN if (ROOT / name).is_file()]
    files += [path for name in NAMED_IN if (ROOT / name).is_dir() for path in (ROOT / name).rglob("*") if path.is_file()]
    pattern = re.compile(r"\bIMAGESEARCH_[A-Z0-9_]*[A-Z0-9]\b(?!_?\*)")  # IMAGESEARCH_GITOPS_* names a group
    named = {name for path in files if path.suffix != ".pyc" for name in pattern.findall(path.read_text(errors="replace"))}
    assert named - NOT_SETTINGS - set(variable_names()) == set()


def test_settings_are_read_once_per_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMAGESEARCH_PORT", "9001")
    first = get_settings()
    monkeypatch.setenv("IMAGESEARCH_PORT", "9002")
    assert get_settings() is first and first.serving.port == 9001
    get_settings.cache_clear()
    assert get_settings().serving.port == 9002


def test_a_step_given_a_bad_variable_fails_for_good_naming_it(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "IMAGESEARCH_MAX_SHARDS": "lots"}
    result = subprocess.run([sys.executable, "-m", "tasks.steps.snapshot", "--workspace", str(tmp_path), "--version", "v1"],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stderr
    assert "snapshot failed: IMAGESEARCH_MAX_SHARDS='lots' is not valid" in result.stderr
