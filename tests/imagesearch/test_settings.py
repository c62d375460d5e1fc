import pytest

from imagesearch.settings import Settings, SettingsError


def test_defaults_and_environment_overrides() -> None:
    settings = Settings.from_env({"IMAGESEARCH_MODEL_REPOSITORY": "gs://b/p", "IMAGESEARCH_SHARD_SIZE": "50",
                                  "IMAGESEARCH_MAX_FAILURE_RATIO": "0.5", "IMAGESEARCH_RUNNER": "kubernetes"})
    assert settings.model_repository == "gs://b/p"
    assert settings.shard_size == 50 and settings.max_failure_ratio == 0.5 and settings.runner == "kubernetes"
    assert Settings.from_env({}).runner == "local"


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [("SHARD_SIZE", "many", "not a valid int"), ("RUNNER", "docker", "must be 'local'"), ("MAX_FAILURE_RATIO", "2", "within"),
     ("CURRENCY", "dollars", "ISO 4217")],
)
def test_invalid_values_are_explained(name: str, value: str, message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        Settings.from_env({f"IMAGESEARCH_{name}": value})
