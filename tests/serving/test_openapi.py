"""The API docs: every operation, response and field described with real examples; Swagger UI and Redoc served
from the installed openapi-ui-bundles package and rendered by a real Chromium with no network."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import jsonschema
import pytest
from litestar.testing import TestClient

from tests.serving.browser import offline_page, screenshot
from tests.serving.conftest import ServerProcess

if TYPE_CHECKING:
    from playwright.sync_api import Browser

OPERATION_IDS = {
    ("post", "/v1/search"): "searchByImage",
    ("get", "/v1/items/{item_id}/similar"): "similarItems",
    ("get", "/v1/items/{item_id}/image"): "getItemImage",
    ("get", "/v1/index"): "getIndex",
    ("get", "/healthz"): "checkLiveness",
    ("get", "/readyz"): "checkReadiness",
    ("get", "/metrics"): "getMetrics",
    ("post", "/admin/index"): "swapIndex",
}
DOCS_PAGES = ("/schema", "/schema/swagger", "/schema/redoc")
BINARY_BODIES = {"image/*"}  # a picture has a schema (binary string) but no example worth writing in JSON


@pytest.fixture(scope="module")
def document(client: TestClient) -> dict[str, Any]:
    return client.get("/schema/openapi.json").json()


def operations(document: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(method, path): operation for path, item in document["paths"].items() for method, operation in item.items()}


def test_every_operation_has_a_readable_id_a_summary_and_a_description(document: dict[str, Any]) -> None:
    found = operations(document)
    assert {key: operation["operationId"] for key, operation in found.items()} == OPERATION_IDS
    for key, operation in found.items():
        assert operation.get("summary") and len(operation.get("description", "")) > 40, key


def test_every_response_has_its_schema_and_an_example_that_matches_it(document: dict[str, Any]) -> None:
    checked = 0
    for key, operation in operations(document).items():
        assert "200" in operation["responses"], key
        for status, response in operation["responses"].items():
            assert response.get("description"), (key, status)
            assert response.get("content"), (key, status)
            for media_type, body in response["content"].items():
                assert body.get("schema"), (key, status, media_type)
                if media_type in BINARY_BODIES:
                    continue
                examples = [example["value"] for example in (body.get("examples") or {}).values()]
                assert examples, f"{key} {status} {media_type} has no example"
                for example in examples:
                    schema = {**body["schema"], "components": document["components"]}
                    jsonschema.Draft202012Validator(schema).validate(example)
                    checked += 1
    assert checked >= 20


def test_a_schema_that_does_not_match_its_example_is_caught(document: dict[str, Any]) -> None:
    # The check above can fail: a hit without its score is refused.
    search = document["paths"]["/v1/search"]["post"]["responses"]["200"]["content"]["application/json"]
    example = next(iter(search["examples"].values()))["value"]
    broken = {**example, "results": [{k: v for k, v in example["results"][0].items() if k != "score"}]}
    with pytest.raises(jsonschema.ValidationError, match="score"):
        jsonschema.Draft202012Validator({**search["schema"], "components": document["components"]}).validate(broken)


def test_every_schema_field_has_a_description(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    assert {"SearchResponse", "SearchHit", "Timing", "IndexInfo", "Health", "ErrorBody", "SwapRequest"} <= set(schemas)
    undescribed = [
        f"{name}.{field}" for name, schema in schemas.items() for field, spec in schema.get("properties", {}).items()
        if len(spec.get("description", "")) < 10
    ]
    assert not undescribed
    hit = schemas["SearchHit"]["properties"]
    assert "-1 to 1" in hit["score"]["description"] and "same picture" in hit["score"]["description"]
    assert "ISO 4217" in hit["currency"]["description"] and "currency" in hit["price"]["description"]
    assert "relative" in hit["image_url"]["description"]
    for parameter in document["paths"]["/v1/search"]["post"]["parameters"]:
        assert parameter.get("description"), parameter["name"]


def test_the_admin_route_declares_its_bearer_token(document: dict[str, Any]) -> None:
    scheme = document["components"]["securitySchemes"]["adminToken"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    assert document["paths"]["/admin/index"]["post"]["security"] == [{"adminToken": []}]
    assert "security" not in document["paths"]["/v1/search"]["post"]


def test_the_docs_pages_load_nothing_from_the_internet(client: TestClient) -> None:
    for page in DOCS_PAGES:
        response = client.get(page)
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/html"), page
        head = response.text.split("<body")[0]
        urls = re.findall(r"""(?:src|href)=["']([^"']+)["']""", head)
        assert urls and not [url for url in urls if not url.startswith("/")], (page, urls)
        for url in urls:
            asset = client.get(url)
            assert asset.status_code == 200 and len(asset.content) > 200, url


@pytest.mark.slow
def test_swagger_ui_shows_every_operation_offline(browser: Browser, live_server: ServerProcess) -> None:
    with offline_page(browser, live_server.url) as (page, elsewhere):
        page.goto(live_server.url + "/schema")
        page.wait_for_selector(".opblock-summary-path", timeout=30_000)
        shown = {
            (method.lower(), path.replace("\u200b", ""))
            for method, path in zip(
                page.locator(".opblock-summary-method").all_inner_texts(),
                page.locator(".opblock-summary-path").all_inner_texts(), strict=True,
            )
        }
        assert shown == set(OPERATION_IDS)
        page.locator("#operations-search-searchByImage .opblock-summary").click()
        page.wait_for_selector("#operations-search-searchByImage .response-col_description")
        assert "chelsea-mirror" in page.inner_text("#operations-search-searchByImage")  # the real example
        assert page.locator(".btn.authorize").count() == 1  # the bearer scheme
        screenshot(page, "api-docs-swagger")
        assert not elsewhere, elsewhere


@pytest.mark.slow
def test_redoc_shows_every_operation_offline(browser: Browser, live_server: ServerProcess) -> None:
    with offline_page(browser, live_server.url) as (page, elsewhere):
        page.goto(live_server.url + "/schema/redoc")
        page.wait_for_selector("h2:has-text('Search the catalog with an image')", timeout=30_000)
        headings = page.locator("h2").all_inner_texts()
        for summary in ("Items similar to a catalog item", "The index being served", "Swap in another index version"):
            assert summary in headings
        assert "Scores are cosine similarities" in page.inner_text("body")  # the API's description
        screenshot(page, "api-docs-redoc")
        assert not elsewhere, elsewhere
