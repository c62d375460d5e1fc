"""The API docs' example bodies decode as the response types they illustrate (strictly: no field missing or extra)."""

from __future__ import annotations

import msgspec
import pytest

from serving import examples
from serving.schemas import Health, IndexInfo, SearchResponse, SwapResponse


@pytest.mark.parametrize(("example", "kind"), [(examples.SEARCH, SearchResponse), (examples.SIMILAR, SearchResponse),
                                               (examples.INDEX, IndexInfo), (examples.LIVE, Health),
                                               (examples.READY, Health), (examples.SWAP, SwapResponse)])
def test_each_example_is_a_valid_body(example: dict, kind: type) -> None:
    decoded = msgspec.convert(example, kind, strict=True)
    assert msgspec.to_builtins(decoded) == example


def test_the_metrics_example_is_prometheus_text() -> None:
    lines = [line for line in examples.METRICS.splitlines() if line and not line.startswith("#")]
    assert lines and all(line.startswith("imagesearch_") and float(line.rsplit(" ", 1)[1]) >= 0 for line in lines)
