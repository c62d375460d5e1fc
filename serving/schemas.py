"""Typed request and response bodies of the HTTP API, each field described for the OpenAPI document."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec


def described(description: str, *examples: Any) -> msgspec.Meta:
    return msgspec.Meta(description=description, examples=list(examples) or None)


VERSION = described("The index version that answered: a UTC build timestamp, sortable.", "20260101T000000Z")
ITEM_ID = described("The catalog item id.", "chelsea")


class SearchHit(msgspec.Struct, frozen=True):
    item_id: Annotated[str, ITEM_ID]
    score: Annotated[float, described(
        "Cosine similarity between the query's and the item's image embeddings, from -1 to 1 (in practice 0 to 1): "
        "1 is the same picture, 0.8 and above a near-duplicate or the same object, 0.5 to 0.8 similar, below 0.5 "
        "little in common. Results are sorted by it, best first.", 0.968801,
    )]
    title: Annotated[str, described("The item's title from the catalog.", "chelsea")]
    category: Annotated[str, described("The item's catalog category.", "pets")]
    price: Annotated[float, described("The item's price, in `currency`.", 12.0)]
    currency: Annotated[str, described("ISO 4217 code of `price` (the catalog's currency).", "USD")]
    on_sale: Annotated[bool, described("Whether the item is on sale.", False)]
    image_url: Annotated[str, described(
        "Where a browser loads the item's picture: the catalog's own http(s) URL, or this server's "
        "`/v1/items/{item_id}/image` route, relative to the API unless the server is configured with a public "
        "base URL.", "/v1/items/chelsea/image",
    )]


class Timing(msgspec.Struct, frozen=True):
    total_ms: Annotated[float, described("Milliseconds the server spent on the request.", 23.4)]
    search_ms: Annotated[float, described("Milliseconds of nearest-neighbour search (and filtering).", 0.4)]
    # Only image queries decode and embed (embed_ms includes the wait for a micro-batch);
    # /similar reads the stored embedding.
    preprocess_ms: Annotated[float | None, described(
        "Milliseconds decoding and resizing the query image; null for similar-item queries.", 6.1,
    )] = None
    embed_ms: Annotated[float | None, described(
        "Milliseconds computing the query's embedding, including the wait for a micro-batch; null for "
        "similar-item queries.", 16.9,
    )] = None


class SearchResponse(msgspec.Struct, frozen=True):
    version: Annotated[str, VERSION]
    k: Annotated[int, described("How many results were asked for (fewer come back when fewer items match).", 3)]
    results: Annotated[list[SearchHit], described("The nearest items that pass the filters, best first.")]
    timing: Annotated[Timing, described("Where the time went, in milliseconds.")]
    # Set for /similar: the item whose neighbours these are.
    item_id: Annotated[str | None, described(
        "For similar-item queries, the item whose neighbours these are (never among them); null for image search.",
    )] = None
    capped: Annotated[bool, described(
        "True when a filtered search examined IMAGESEARCH_FILTERED_SEARCH_MAX_ROWS nearest items before finding `k` "
        "matches: the results are the matches among them, possibly fewer than `k`.", False,
    )] = False


class IndexInfo(msgspec.Struct, frozen=True):
    version: Annotated[str, VERSION]
    item_count: Annotated[int, described("Items in the index.", 20)]
    created_at: Annotated[str, described("When the index was built, ISO 8601 in UTC.", "2026-01-01T00:00:00+00:00")]
    model_id: Annotated[str, described(
        "The embedding model (backbone, weights, pooling, preprocessing) the index was built with; queries are "
        "embedded with the same.",
        "efficientnet-lite0-579344248a93-gem3-pad224-39469313",
    )]
    embedding_dim: Annotated[int, described("Dimensions of the stored embeddings.", 1280)]
    index_kind: Annotated[str, described("How neighbours are found: ScaNN's brute-force or partitioned search.", "brute_force")]
    categories: Annotated[list[str], described(
        "Every category in the index: the values `category` filters on.", ["kitchen", "pets", "space"],
    )]
    metrics: Annotated[dict[str, float], described(
        "The evaluation metrics recorded when the index was built (e.g. recall@10 of the approximate search).",
        {"recall_at_10": 1.0},
    )]


class Health(msgspec.Struct, frozen=True):
    status: Annotated[str, described("`ok` (the process answers) or `ready` (an index is loaded).", "ready")]
    version: Annotated[str | None, described("The index version being served; null from /healthz.")] = None
    item_count: Annotated[int | None, described("Items in the index being served; null from /healthz.")] = None


class ErrorBody(msgspec.Struct, frozen=True):
    status: Annotated[int, described("The HTTP status code, repeated.", 400)]
    error: Annotated[str, described("A short, stable tag for programs, e.g. `unknown_item` or `overloaded`.", "bad_request")]
    detail: Annotated[str, described("What went wrong, in words for people.", "min_price (50) is above max_price (10)")]


class SwapRequest(msgspec.Struct, frozen=True):
    directory: Annotated[str, described(
        "Absolute path, on the server, of a fetched and committed index version to load.",
        "/srv/imagesearch/indexes/20260102T000000Z",
    )]


class SwapResponse(msgspec.Struct, frozen=True):
    version: Annotated[str, described("The version now served.", "20260102T000000Z")]
    item_count: Annotated[int, described("Items in the version now served.", 14)]
    previous_version: Annotated[str | None, described(
        "The version served before the swap; null if none was.", "20260101T000000Z",
    )]
