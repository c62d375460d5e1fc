"""The request and response bodies: strict JSON decoding, and every field described for the API docs."""

from __future__ import annotations

import msgspec
import pytest

from serving import schemas

BODIES = (schemas.SearchHit, schemas.Timing, schemas.SearchResponse, schemas.IndexInfo, schemas.Health,
          schemas.ErrorBody, schemas.SwapRequest, schemas.SwapResponse)


def test_a_swap_request_must_name_a_directory_string() -> None:
    assert msgspec.json.decode(b'{"directory": "/srv/x"}', type=schemas.SwapRequest).directory == "/srv/x"
    for bad in (b"{}", b'{"directory": 3}', b"[]"):
        with pytest.raises(msgspec.ValidationError):
            msgspec.json.decode(bad, type=schemas.SwapRequest)


def test_every_field_has_a_description() -> None:
    (_, components) = msgspec.json.schema_components(BODIES)
    for name, component in components.items():
        for field, spec in component["properties"].items():
            described = spec.get("description") or any(part.get("description") for part in spec.get("anyOf", []))
            assert described, f"{name}.{field}"
