"""The public search API: image search, similar items, catalog images, index facts."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated, Any

from litestar import Controller, Request, get, post
from litestar.connection import ASGIConnection
from litestar.di import Provide
from litestar.handlers import BaseRouteHandler
from litestar.openapi.spec import OpenAPIMediaType, OpenAPIType, Operation, RequestBody, Schema
from litestar.params import Parameter
from litestar.response import File

from imagesearch.settings import MAX_K
from serving import examples
from serving.admission import ADMITTED
from serving.errors import ApiError, NotReadyError, UnknownItemError, error_responses
from serving.memory_budget import RESERVES_MEMORY, reservation_of
from serving.openapi import ok
from serving.schemas import IndexInfo, SearchResponse
from serving.search import Filters
from serving.service import SearchService
from serving.uploads import FIELD, MULTIPART, read_image

K = Annotated[int, Parameter(ge=1, le=MAX_K, description="How many results to return.")]
ItemId = Annotated[str, Parameter(description="A catalog item id.")]
Price = Annotated[float | None, Parameter(ge=0, description="Price bound, inclusive.")]
# Catalog images may change between versions, so browsers may keep them for a while but not forever. Catalog files
# are seller input: the type comes from their bytes, browsers must not second-guess it, and nothing in them may run.
IMAGE_HEADERS = {
    "Cache-Control": "max-age=3600",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; sandbox",
}
QUERY_PARAMETERS = frozenset({"k", "category", "min_price", "max_price", "on_sale_only"})


def known_query_parameters(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """A misspelt filter would otherwise be ignored silently and return unfiltered results."""
    unknown = sorted(set(connection.query_params) - QUERY_PARAMETERS)
    if unknown:
        raise ApiError(f"unknown query parameter(s) {', '.join(unknown)}; this route takes {', '.join(sorted(QUERY_PARAMETERS))}")


def search_filters(
    category: Annotated[str | None, Parameter(max_length=200, description="Only items of this category.")] = None,
    min_price: Price = None,
    max_price: Price = None,
    on_sale_only: Annotated[bool, Parameter(description="Only items on sale.")] = False,
) -> Filters:
    for name, bound in (("min_price", min_price), ("max_price", max_price)):
        if bound is not None and not math.isfinite(bound):
            raise ApiError(f"{name} must be a finite number, not {bound}")
    if min_price is not None and max_price is not None and min_price > max_price:
        raise ApiError(f"min_price ({min_price:g}) is above max_price ({max_price:g})")
    return Filters(category=category, min_price=min_price, max_price=max_price, on_sale_only=on_sale_only)


_IMAGE_SCHEMA = Schema(type=OpenAPIType.STRING, format="binary")  # type: ignore[arg-type]


@dataclass
class ImageUploadOperation(Operation):
    """The search body is read by hand (multipart or raw image), so its OpenAPI shape is declared here."""

    def __post_init__(self) -> None:
        multipart = Schema(type=OpenAPIType.OBJECT, properties={FIELD: _IMAGE_SCHEMA}, required=[FIELD])
        self.request_body = RequestBody(
            required=True,
            description=f"The query image: a {MULTIPART} upload in field {FIELD!r}, or the raw bytes with an image/* type.",
            content={
                MULTIPART: OpenAPIMediaType(schema=multipart),
                "image/*": OpenAPIMediaType(schema=_IMAGE_SCHEMA),
            },
        )


class SearchController(Controller):
    path = "/v1"
    tags = ["search"]
    dependencies = {"filters": Provide(search_filters, sync_to_thread=False)}

    @post(
        "/search", status_code=200, operation_class=ImageUploadOperation, operation_id="searchByImage",
        summary="Search the catalog with an image",
        description="Upload a photo; get the `k` catalog items that look most like it, best first, optionally only "
        "those of one category, within a price range or on sale. Fewer than `k` come back only when fewer items match.",
        responses={
            **ok(SearchResponse, "The nearest items, best first.", examples.SEARCH, "A cat photo"),
            **error_responses(400, 408, 413, 415, 422, 429, 503),
        },
        guards=[known_query_parameters], opt={ADMITTED: True, RESERVES_MEMORY: True},
    )
    async def search(
        self, request: Request[Any, Any, Any], service: SearchService, filters: Filters, k: K = 10
    ) -> SearchResponse:
        data = await read_image(request, service.settings.serving.max_upload_bytes)
        return await service.search_image(data, k, filters, reservation_of(request))

    @get(
        "/items/{item_id:str}/similar", operation_id="similarItems", summary="Items similar to a catalog item",
        description="The `k` items that look most like a catalog item (\"More like this\"), best first, the item "
        "itself excluded; the same filters as image search. Needs no image upload: the item's stored embedding is used.",
        responses={
            **ok(SearchResponse, "The nearest items, best first, and the item they are similar to.", examples.SIMILAR,
                 "More like the cat"),
            **error_responses(400, 404, 429, 503),
        },
        guards=[known_query_parameters], opt={ADMITTED: True},
    )
    async def similar(self, item_id: ItemId, service: SearchService, filters: Filters, k: K = 10) -> SearchResponse:
        return await service.similar(item_id, k, filters)

    @get(
        "/items/{item_id:str}/image", operation_id="getItemImage", summary="A catalog item's image (thumbnails)",
        description="The catalog picture of an item, as stored with the index: what `image_url` points to when the "
        "catalog has no http(s) URL of its own. Browsers may cache it for an hour.",
        media_type="image/*", content_media_type="image/*",
        responses=error_responses(400, 404, 429, 503, examples={
            400: ("bad_request", "the request does not match the route's parameters"),
            404: (UnknownItemError.error, "the image of item 'nope' is not a local file this server can serve"),
        }),
        response_description="The image file, with its image/* media type.",
    )
    async def image(self, item_id: ItemId, service: SearchService) -> File:
        path, media_type = service.catalog_image(item_id)
        return File(path=path, media_type=media_type, content_disposition_type="inline", headers=IMAGE_HEADERS)

    @get(
        "/index", operation_id="getIndex", summary="The index being served",
        description="Facts about the index version this server answers from: its version and build time, item count, "
        "model, the categories to filter on, and the evaluation metrics recorded when it was built.",
        responses={
            **ok(IndexInfo, "The served index.", examples.INDEX, "A small demo index"),
            **error_responses(503, examples={503: (NotReadyError.error, "no index is loaded yet")}),
        },
    )
    async def index(self, service: SearchService) -> IndexInfo:
        return service.info()
