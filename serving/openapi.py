"""The OpenAPI document's extras and its two viewers, Swagger UI at ``/schema`` and Redoc at ``/schema/redoc``.

Both viewers load their scripts from the ``openapi-ui-bundles`` package installed with the project (served under
``/docs-assets``), never from a CDN, so the docs work offline and behind a firewall.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import openapi_ui_bundles
from litestar import MediaType, Response, Router, get
from litestar.handlers import HTTPRouteHandler
from litestar.openapi import OpenAPIConfig, ResponseSpec
from litestar.openapi.plugins import JsonRenderPlugin, RedocRenderPlugin, SwaggerRenderPlugin, YamlRenderPlugin
from litestar.openapi.spec import Components, Example, SecurityScheme
from litestar.static_files import create_static_files_router

from serving.web import FAVICON_URL, STATIC_DIR

ASSETS = "/docs-assets"
SWAGGER_ASSETS = f"{ASSETS}/swagger-ui"
REDOC_ASSETS = f"{ASSETS}/redoc"
REDOC_DIR = openapi_ui_bundles.redoc.static_path
REDOC_JS = f"{ASSETS}/redoc.standalone.js"
REDOC_LOGO_CDN = b"https://cdn.redoc.ly/redoc/logo-mini.svg"
FAVICON = f"<link rel='icon' type='image/svg+xml' href='{FAVICON_URL}'>"
ADMIN_SECURITY = "adminToken"
DESCRIPTION = """\
Search a marketplace catalog by image, find items similar to a catalog item, and inspect the index being served.

- **Scores** are cosine similarities of image embeddings, from -1 to 1 (in practice 0 to 1): 1 is the same
  picture, 0.8 and above a near-duplicate or the same object, 0.5 to 0.8 similar, below 0.5 little in common.
- **Prices** are in the currency each result names (`currency`, an ISO 4217 code).
- **Image URLs** are relative to this server (`/v1/items/{item_id}/image`) unless the catalog gives its own
  http(s) URL or the server is configured with a public base URL.
- **Errors** are JSON: `{"status", "error", "detail"}`, where `error` is a stable tag and `detail` says what to fix.
- Swagger UI is at `/schema`, Redoc at `/schema/redoc`, the document itself at `/schema/openapi.json`.
"""


def openapi_config(version: str) -> OpenAPIConfig:
    return OpenAPIConfig(
        title="Image search",
        version=version,
        description=DESCRIPTION,
        path="/schema",
        components=Components(security_schemes={
            ADMIN_SECURITY: SecurityScheme(
                type="http", scheme="bearer",
                description="The server's admin token (IMAGESEARCH_ADMIN_TOKEN), as `Authorization: Bearer <token>`.",
            ),
        }),
        render_plugins=[
            SwaggerRenderPlugin(
                path=["/", "/swagger"], favicon=FAVICON,
                js_url=f"{SWAGGER_ASSETS}/swagger-ui-bundle.js", css_url=f"{SWAGGER_ASSETS}/swagger-ui.css",
                standalone_preset_js_url=f"{SWAGGER_ASSETS}/swagger-ui-standalone-preset.js",
            ),
            RedocRenderPlugin(path="/redoc", favicon=FAVICON, js_url=REDOC_JS, google_fonts=False),
            JsonRenderPlugin(),
            YamlRenderPlugin(),
        ],
    )


@cache
def _redoc_bundle() -> bytes:
    # The bundle's one hard-coded CDN URL is its menu badge's logo: point it at the copy shipped beside it.
    return (REDOC_DIR / "redoc.standalone.js").read_bytes().replace(REDOC_LOGO_CDN, f"{REDOC_ASSETS}/logo-mini.svg".encode())


@get(REDOC_JS, operation_id="getRedocBundle", include_in_schema=False, sync_to_thread=False)
def redoc_bundle() -> Response[bytes]:
    return Response(_redoc_bundle(), media_type="text/javascript")


def asset_routers() -> list[Router | HTTPRouteHandler]:
    """The viewers' scripts and styles, and the page's own static files (the favicon)."""
    return [
        redoc_bundle,
        create_static_files_router(SWAGGER_ASSETS, [openapi_ui_bundles.swagger_ui.static_path], name="swagger-ui-assets"),
        create_static_files_router(REDOC_ASSETS, [REDOC_DIR], name="redoc-assets"),
        create_static_files_router("/static", [STATIC_DIR], name="static"),
    ]


def ok(
    data_container: Any, description: str, example: Any, summary: str, media_type: str = MediaType.JSON
) -> dict[int, ResponseSpec]:
    """The 200 response with its schema and a real example (Litestar documents only the schema by itself)."""
    return {200: ResponseSpec(
        data_container, description=description, generate_examples=False, media_type=media_type,
        examples=[Example(summary=summary, value=example)],
    )}
