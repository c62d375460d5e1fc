"""The embedder's definition without torch: its config round-trips through a run's record, and the model id
names weights, pooling and preprocessing."""

from __future__ import annotations

import json

import pytest

from imagesearch.embedder_config import MODEL_NAME, EmbedderConfig, default_weights_path, model_id, model_id_for
from imagesearch.manifest import sha256_file
from imagesearch.preprocess import PreprocessConfig


def test_config_round_trips_through_json() -> None:
    config = EmbedderConfig(PreprocessConfig(size=192, fit="crop"), pooling="avg")
    assert EmbedderConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    with pytest.raises(TypeError):
        EmbedderConfig.from_dict({**config.to_dict(), "unknown": 1})
    with pytest.raises(KeyError):
        EmbedderConfig.from_dict({"pooling": "gem"})


def test_model_id_names_weights_pooling_and_preprocessing() -> None:
    digest = sha256_file(default_weights_path())
    assert model_id_for() == f"{MODEL_NAME}-{digest[:12]}-gem3-pad224"
    assert model_id(digest, EmbedderConfig(PreprocessConfig(size=192, fit="crop"), pooling="avg")) == \
        f"{MODEL_NAME}-{digest[:12]}-avg-crop192"
    # The caps on what a process decodes are not part of the model.
    assert model_id_for(EmbedderConfig(PreprocessConfig(max_pixels=1000, min_side=2))) == model_id_for()
