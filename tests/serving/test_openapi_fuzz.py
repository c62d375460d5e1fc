"""The OpenAPI document, fuzzed by schemathesis against the running server with valid and invalid requests:
no 5xx, invalid input refused, every response as documented."""

from __future__ import annotations

import collections
import itertools

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance

from tests.serving.conftest import ServerProcess

pytestmark = pytest.mark.slow
EXAMPLES_PER_OPERATION = 30
# Every check but one: OpenAPI cannot say "a decodable image at least 16 px on a side" (nor "an existing
# directory" for the admin swap), so schema-valid bytes may rightly be refused with a 4xx.
EXCLUDED_CHECKS = [positive_data_acceptance]


def test_every_operation_honours_the_openapi_document(live_server: ServerProcess) -> None:
    schema = schemathesis.openapi.from_url(f"{live_server.url}/schema/openapi.json")
    operations = {f"{result.ok().method.upper()} {result.ok().path}": result.ok() for result in schema.get_all_operations()}
    assert set(operations) >= {
        "POST /v1/search", "GET /v1/items/{item_id}/similar", "GET /v1/items/{item_id}/image", "GET /v1/index",
        "GET /healthz", "GET /readyz", "GET /metrics", "POST /admin/index",
    }
    cases: collections.Counter[tuple[str, GenerationMode]] = collections.Counter()
    for (name, operation), mode in itertools.product(operations.items(), (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)):

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        def honours_the_document(case: schemathesis.Case) -> None:
            cases[name, mode] += 1  # noqa: B023 (the test runs right here, inside this iteration)
            case.call_and_validate(base_url=live_server.url, excluded_checks=EXCLUDED_CHECKS)

        try:
            honours_the_document()
        except Unsatisfiable:
            assert mode is GenerationMode.NEGATIVE, f"no valid request could be generated for {name}"  # e.g. GET /healthz
    for name in ("POST /v1/search", "GET /v1/items/{item_id}/similar", "POST /admin/index"):
        assert cases[name, GenerationMode.POSITIVE] > 0 and cases[name, GenerationMode.NEGATIVE] > 0, (name, cases)
