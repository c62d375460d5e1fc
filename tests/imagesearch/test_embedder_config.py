"""The embedder's definition without torch: its config round-trips through a run's record (nothing left out, nothing
unknown), the model id changes with every field of the backbone's spec, pooling and preprocessing, and a version's
model is servable only when this image has that very backbone."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest

from imagesearch.backbones import BACKBONES, BackboneSpec, Normalisation, registered
from imagesearch.embedder_config import EmbedderConfig, servable_config
from imagesearch.errors import ArtifactError, BackboneError
from imagesearch.manifest import ModelInfo
from imagesearch.preprocess import PreprocessConfig
from imagesearch.records import RecordError
from imagesearch.settings import Settings

LITE0 = registered("efficientnet-lite0")
BASE = EmbedderConfig.for_backbone(LITE0)
# A valid other value for each kind of leaf: the Literal fields keep to their choices.
OTHER = {"gem": "avg", "avg": "gem", "pad": "crop", "crop": "pad"}


def leaves(record: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """The path of every scalar in a JSON record (list items included)."""
    if isinstance(record, dict):
        return [leaf for key, value in record.items() for leaf in leaves(value, (*path, key))]
    if isinstance(record, (list, tuple)):
        return [leaf for index, value in enumerate(record) for leaf in leaves(value, (*path, index))]
    return [path]


def changed(record: Any, path: tuple[Any, ...]) -> Any:
    """A deep copy of ``record`` with the value at ``path`` changed."""
    copy = json.loads(json.dumps(record))
    parent = copy
    for key in path[:-1]:
        parent = parent[key]
    value = parent[path[-1]]
    parent[path[-1]] = OTHER.get(value, value + "x") if isinstance(value, str) else value * 2 + 1
    return copy


def test_config_round_trips_through_json() -> None:
    config = EmbedderConfig.for_backbone(registered("efficientnet-lite1"), fit="crop", pooling="avg", size=192)
    record = json.loads(json.dumps(config.to_dict()))
    assert EmbedderConfig.from_dict(record) == config
    assert record["backbone"]["name"] == "efficientnet-lite1" and record["preprocess"]["size"] == 192


@pytest.mark.parametrize("path", [("pooling",), ("backbone", "weights", "sha256"), ("preprocess", "min_side"),
                                  ("preprocess", "normalisation")])
def test_a_record_missing_any_key_is_refused(path: tuple[str, ...]) -> None:
    record = BASE.to_dict()
    parent = record
    for key in path[:-1]:
        parent = parent[key]
    del parent[path[-1]]
    with pytest.raises(RecordError, match="the embedder config is not a valid EmbedderConfig record"):
        EmbedderConfig.from_dict(record)


def test_a_record_with_an_unknown_key_is_refused() -> None:
    with pytest.raises(RecordError, match="unknown field `unknown`"):
        EmbedderConfig.from_dict({**BASE.to_dict(), "unknown": 1})
    record = BASE.to_dict()
    record["backbone"]["architecture"]["squeeze_excite"] = True
    with pytest.raises(RecordError, match=r"unknown field `squeeze_excite` - at `\$.backbone.architecture`"):
        EmbedderConfig.from_dict(record)


def test_the_preprocessing_normalises_as_the_weights_expect() -> None:
    other = PreprocessConfig(size=224, normalisation=Normalisation((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)))
    with pytest.raises(ValueError, match="the weights of efficientnet-lite0 expect"):
        EmbedderConfig(LITE0, other, "gem", 3.0)


def test_the_backbone_sets_input_size_normalisation_and_pooling() -> None:
    for spec in BACKBONES.values():
        config = EmbedderConfig.for_backbone(spec)
        assert (config.preprocess.size, config.preprocess.normalisation) == (spec.input_size, spec.normalisation)
        assert (config.pooling, config.gem_p, config.preprocess.fit) == (spec.pooling, spec.gem_p, "pad")
    lite2 = Settings.from_env({"IMAGESEARCH_BACKBONE": "efficientnet-lite2"})
    assert EmbedderConfig.for_settings(lite2) == EmbedderConfig.for_backbone(registered("efficientnet-lite2"))


def test_the_model_id_names_backbone_weights_pooling_and_preprocessing() -> None:
    head, digest = BASE.model_id.rsplit("-", 1)
    assert head == f"efficientnet-lite0-{LITE0.weights.sha256[:12]}-gem3-pad224" and len(digest) == 8
    assert EmbedderConfig.for_backbone(LITE0, fit="crop", pooling="avg", size=192).model_id.startswith(
        f"efficientnet-lite0-{LITE0.weights.sha256[:12]}-avg-crop192-")


@pytest.mark.parametrize("path", leaves(msgspec.to_builtins(LITE0)), ids=lambda path: ".".join(map(str, path)))
def test_changing_any_field_of_the_backbone_spec_changes_the_model_id(path: tuple[Any, ...]) -> None:
    spec = msgspec.convert(changed(msgspec.to_builtins(LITE0), path), BackboneSpec)
    assert spec != LITE0
    assert EmbedderConfig.for_backbone(spec).model_id != BASE.model_id


@pytest.mark.parametrize("path", [("pooling",), ("gem_p",), ("preprocess", "size"), ("preprocess", "fit")])
def test_changing_pooling_or_preprocessing_changes_the_model_id(path: tuple[str, ...]) -> None:
    assert EmbedderConfig.from_dict(changed(BASE.to_dict(), path)).model_id != BASE.model_id


def test_the_caps_on_what_is_decoded_are_not_part_of_the_model() -> None:
    capped = msgspec.structs.replace(BASE, preprocess=msgspec.structs.replace(BASE.preprocess, max_pixels=1000, min_side=2))
    assert capped.model_id == BASE.model_id


# ----------------------------------------------------------------------------- servable_config


def model_of(embedder: EmbedderConfig, **changes: Any) -> ModelInfo:
    return msgspec.structs.replace(embedder.model_info(), **changes)


def test_a_version_of_a_registered_backbone_is_servable() -> None:
    for spec in BACKBONES.values():
        config = EmbedderConfig.for_backbone(spec)
        assert servable_config(model_of(config), "20260101T000000Z") == config


def test_a_version_that_records_no_backbone_is_refused_with_a_word_to_rebuild_it() -> None:
    old = ModelInfo("efficientnet-lite0", LITE0.weights.sha256, "efficientnet-lite0-579344248a93-gem3-pad224", 1280,
                    {"preprocess": {"size": 224, "fit": "pad", "max_pixels": 40_000_000, "min_side": 16},
                     "pooling": "gem", "gem_p": 3.0})
    with pytest.raises(BackboneError, match=r"version V records no backbone .* Rebuild the version"):
        servable_config(old, "V")


def test_a_backbone_this_image_does_not_know_is_refused() -> None:
    spec = msgspec.structs.replace(LITE0, name="efficientnet-lite4")
    with pytest.raises(BackboneError, match="unknown backbone 'efficientnet-lite4'"):
        servable_config(model_of(EmbedderConfig.for_backbone(spec)), "V")


def test_other_weights_or_another_spec_under_a_known_name_are_refused() -> None:
    weights = msgspec.structs.replace(LITE0.weights, sha256="ab" * 32)
    other_weights = EmbedderConfig.for_backbone(msgspec.structs.replace(LITE0, weights=weights))
    with pytest.raises(BackboneError, match=f"embedded with efficientnet-lite0 weights of sha256 {'ab' * 32}; this "
                                            f"image's efficientnet-lite0 has {LITE0.weights.sha256}"):
        servable_config(model_of(other_weights), "V")
    other_size = EmbedderConfig.for_backbone(msgspec.structs.replace(LITE0, input_size=256))
    with pytest.raises(BackboneError, match=r"records backbone efficientnet-lite0 as .*'input_size': 256.* this image's "
                                            r"registry has .*'input_size': 224"):
        servable_config(model_of(other_size), "V")


def test_a_model_that_its_config_does_not_derive_is_refused() -> None:
    with pytest.raises(ArtifactError, match=r"names model efficientnet-lite0-other .* but its model\.config derives"):
        servable_config(model_of(BASE, model_id="efficientnet-lite0-other"), "V")
    with pytest.raises(ArtifactError, match=r"model\.config is not an embedder config"):
        servable_config(model_of(BASE, config={**BASE.to_dict(), "pooling": "max"}), "V")


def test_a_registered_backbone_whose_weights_are_not_installed_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    weights = msgspec.structs.replace(LITE0.weights, package="efficientnet-lite9-pytorch-model")
    missing = msgspec.structs.replace(LITE0, name="efficientnet-lite9", weights=weights)
    monkeypatch.setitem(BACKBONES, missing.name, missing)
    with pytest.raises(BackboneError, match=r"efficientnet-lite9-pytorch-model==0\.1\.0 is not installed in this image"):
        servable_config(model_of(EmbedderConfig.for_backbone(missing)), "V")
