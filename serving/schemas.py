"""Typed request and response bodies of the HTTP API."""

from __future__ import annotations

import msgspec


class SearchHit(msgspec.Struct, frozen=True):
    item_id: str
    score: float
    title: str
    category: str
    price: float
    on_sale: bool
    image_url: str


class Timing(msgspec.Struct, frozen=True):
    total_ms: float
    search_ms: float
    # Only image queries decode and embed (embed_ms includes the wait for a micro-batch);
    # /similar reads the stored embedding.
    preprocess_ms: float | None = None
    embed_ms: float | None = None


class SearchResponse(msgspec.Struct, frozen=True):
    version: str
    k: int
    results: list[SearchHit]
    timing: Timing
    # Set for /similar: the item whose neighbours these are.
    item_id: str | None = None
    # A filtered search reached IMAGESEARCH_FILTERED_SEARCH_MAX_ROWS before finding k matches: these are the
    # matches among that many nearest items, possibly fewer than k.
    capped: bool = False


class IndexInfo(msgspec.Struct, frozen=True):
    version: str
    item_count: int
    created_at: str
    model_id: str
    embedding_dim: int
    index_kind: str
    categories: list[str]
    metrics: dict[str, float]


class Health(msgspec.Struct, frozen=True):
    status: str
    version: str | None = None
    item_count: int | None = None


class ErrorBody(msgspec.Struct, frozen=True):
    status: int
    error: str
    detail: str


class SwapRequest(msgspec.Struct, frozen=True):
    directory: str


class SwapResponse(msgspec.Struct, frozen=True):
    version: str
    item_count: int
    previous_version: str | None
