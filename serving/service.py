"""The search service behind the controllers: image queries, similar items, index facts, catalog images."""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol, TypeVar
from urllib.parse import quote

import anyio
import anyio.to_thread
import numpy as np
from PIL import Image

from imagesearch.artifacts import version_directory
from imagesearch.embedder_config import EmbedderConfig
from imagesearch.index_store import LoadedIndex
from imagesearch.preprocess import PreprocessConfig, fitted_opened, normalize, open_image, preprocess_bytes
from imagesearch.settings import Settings
from imagesearch.uri import local_path
from serving.batcher import MicroBatcher, QueueFullError
from serving.errors import NotReadyError, OverloadedError, UnknownItemError
from serving.image_types import image_file_type
from serving.index_holder import IndexHolder
from serving.memory_budget import MIB, MemoryBudget, Reservation, decode_bytes
from serving.memory_limit import category_index_budget_bytes
from serving.metrics import Metrics
from serving.schemas import IndexInfo, SearchHit, SearchResponse, Timing
from serving.search import Filters, Neighbours, build_category_indexes, nearest

log = logging.getLogger(__name__)

T = TypeVar("T")
# Up to this many embedding floats (about 800 items of 1280 dims), a worst-case exact search takes ~0.1 ms.
INLINE_SEARCH_MAX_FLOATS = 1_000_000


class QueryEmbedder(Protocol):
    """What serving needs from :class:`imagesearch.embedder.Embedder`."""

    model_id: str
    config: EmbedderConfig

    def embed_arrays(self, batch: np.ndarray) -> np.ndarray: ...


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 3)


class SearchService:
    def __init__(self, settings: Settings, embedder: QueryEmbedder, metrics: Metrics) -> None:
        self.settings = settings
        self.embedder = embedder
        self.metrics = metrics
        self.holder = IndexHolder(embedder.model_id, on_swap=self._serving)
        # The embedder's size and fit (they are part of the model id); this server's caps on what queries decode.
        self.preprocess_config: PreprocessConfig = embedder.config.preprocess.for_queries(settings)
        # Bodies and decodes of queries reserve their memory here (serving/memory_budget.py).
        serving = settings.serving
        self.memory = MemoryBudget(serving.query_memory_budget_mb * MIB,
                                   decode_bytes(serving.query_max_image_pixels, serving.max_upload_bytes),
                                   serving.client_slot_share, serving.retry_after_s, metrics, serving.query_memory_wait_s)
        self._limiter: anyio.CapacityLimiter | None = None
        self._batcher: MicroBatcher | None = None

    async def start(self) -> None:
        """Per event loop: the thread limiters and the micro-batcher."""
        self._limiter = anyio.CapacityLimiter(self.settings.serving.request_threads)
        self._batcher = MicroBatcher(
            self.embedder.embed_arrays,
            max_size=self.settings.serving.batch_max_size,
            max_wait_s=self.settings.serving.batch_max_wait_ms / 1000,
            max_pending=self.settings.serving.max_queue,
            on_batch=self.metrics.observe_batch,
        )

    async def stop(self) -> None:
        if self._batcher is not None:
            await self._batcher.close()
            self._batcher = None

    def _serving(self, index: LoadedIndex) -> None:
        self.metrics.set_index(index)
        # The model and the index live as long as they are served: keep the cyclic collector from rescanning
        # their millions of objects (a full pass takes ~0.2 s, a latency spike). Refcounting still frees old ones.
        gc.freeze()
        # Ready now; large categories get their own index meanwhile (at a million items, minutes of work).
        threading.Thread(target=self._build_category_indexes, args=(index,), daemon=True,
                         name=f"category-indexes-{index.version}").start()

    def _build_category_indexes(self, index: LoadedIndex) -> None:
        began = time.perf_counter()
        serving = self.settings.serving
        budget = category_index_budget_bytes(serving.category_index_memory_mb, serving.query_memory_budget_mb)
        built = build_category_indexes(index, serving.filtered_search_max_rows,
                                       wanted=lambda: self.holder.current is index, budget_bytes=budget)
        log.info("version %s: %d category indexes built in %.1f s", index.version, built, time.perf_counter() - began)

    def index(self) -> LoadedIndex:
        index = self.holder.current
        if index is None:
            raise NotReadyError("no index is loaded yet", self.settings.serving.retry_after_s)
        return index

    async def swap_index(self, directory: Path) -> tuple[LoadedIndex, LoadedIndex | None]:
        """Serve ``<index root>/<version>`` from now on, once verified: (new, previous). Nothing else loads: a
        directory outside the index root, or not named like a version, is refused."""
        serving = self.settings.serving
        root = Path(serving.index_root or Path(serving.index_dir).absolute().parent)
        directory = version_directory(root, directory)
        return await self.holder.swap(directory, directory.name)

    def model_input(self, data: bytes) -> np.ndarray:
        """A query image's bytes -> the network's input: the pipeline's preprocessing, with this server's caps."""
        return preprocess_bytes(data, self.preprocess_config)

    def _model_input_opened(self, image: Image.Image) -> np.ndarray:
        return normalize(fitted_opened(image, self.preprocess_config), self.preprocess_config)

    async def decoded(self, data: bytes, reservation: Reservation) -> np.ndarray:
        """:meth:`model_input` off the event loop, its decode's memory reserved once the header says how much."""
        image = await self._off_loop(open_image, data, self.preprocess_config)
        try:
            await reservation.reserve_decode(decode_bytes(image.width * image.height, len(data)))
        except BaseException:
            image.close()
            raise
        try:
            return await self._off_loop(self._model_input_opened, image)
        finally:
            reservation.release_decode()

    async def search_image(self, data: bytes, k: int, filters: Filters, reservation: Reservation | None = None) -> SearchResponse:
        """``reservation``: the request's share of the memory for queries (its body's, from serving/memory_budget.py's
        middleware); without one, only the decode is reserved."""
        began = time.perf_counter()
        index = self.index()  # this request's version to the end, whatever swaps meanwhile
        batcher = self._running_batcher()
        own = reservation is None
        reservation = reservation or self.memory.reservation()
        try:
            array = await self.decoded(data, reservation)
        finally:
            if own:
                reservation.release()
        decoded = time.perf_counter()
        try:
            vector = await batcher.submit(array)
        except QueueFullError:
            raise self._overloaded() from None
        embedded = time.perf_counter()
        found = await self._search(index, index.project(vector)[0], k, filters)
        done = time.perf_counter()
        timing = Timing(
            total_ms=_ms(done - began), search_ms=_ms(done - embedded),
            preprocess_ms=_ms(decoded - began), embed_ms=_ms(embedded - decoded),
        )
        return SearchResponse(index.version, k, self._hits(index, found), timing, capped=found.capped)

    async def similar(self, item_id: str, k: int, filters: Filters) -> SearchResponse:
        began = time.perf_counter()
        index = self.index()
        row = self._row(index, item_id)
        found = await self._search(index, index.embeddings[row], k, filters, row)
        elapsed = _ms(time.perf_counter() - began)
        timing = Timing(total_ms=elapsed, search_ms=elapsed)
        return SearchResponse(index.version, k, self._hits(index, found), timing, item_id=item_id, capped=found.capped)

    def info(self) -> IndexInfo:
        index = self.index()
        manifest = index.manifest
        return IndexInfo(
            version=index.version, item_count=index.size, created_at=manifest.created_at,
            model_id=manifest.model.model_id, embedding_dim=manifest.model.dim,
            index_kind=str(manifest.index.get("params", {}).get("kind", "unknown")),
            categories=index.items.distinct("category"), metrics=dict(manifest.metrics),
        )

    def catalog_image(self, item_id: str) -> tuple[Path, str]:
        """The local file of an item's catalog image and its media type from its bytes; 404 for remote images,
        missing files and files that are not a raster image (whatever their name says)."""
        index = self.index()
        uri = index.items["image_uri"][self._row(index, item_id)]
        path = local_path(uri)
        if path is None or not path.is_file():
            raise UnknownItemError(f"the image of item {item_id!r} is not a local file this server can serve")
        media_type = image_file_type(path)
        if media_type is None:
            raise UnknownItemError(f"the file of item {item_id!r} is not a PNG, JPEG, GIF, WebP, TIFF or BMP image")
        return path, media_type

    def image_url(self, item_id: str, image_uri: str) -> str:
        """A URL a browser can load: the catalog's own http(s) URL, else this server's image route."""
        if image_uri.startswith(("http://", "https://")):
            return image_uri
        return f"{self.settings.serving.image_base_url.rstrip('/')}/v1/items/{quote(item_id, safe='')}/image"

    def _hits(self, index: LoadedIndex, found: Neighbours) -> list[SearchHit]:
        items = index.items
        return [
            SearchHit(
                item_id=items["item_id"][row], score=round(float(score), 6), title=items["title"][row],
                category=items["category"][row], price=float(items["price"][row]),
                currency=self.settings.serving.currency, on_sale=bool(items["on_sale"][row]),
                image_url=self.image_url(items["item_id"][row], items["image_uri"][row]),
            )
            for row, score in zip(found.rows.tolist(), found.scores.tolist(), strict=True)
        ]

    @staticmethod
    def _row(index: LoadedIndex, item_id: str) -> int:
        row = index.row_of.get(item_id)
        if row is None:
            raise UnknownItemError(f"no item {item_id!r} in index version {index.version}")
        return row

    def _running_batcher(self) -> MicroBatcher:
        if self._batcher is None:
            raise RuntimeError("SearchService.start() was not awaited")
        return self._batcher

    def _overloaded(self) -> OverloadedError:
        self.metrics.rejected.inc()
        return OverloadedError("too many image queries are waiting; retry shortly", self.settings.serving.retry_after_s)

    async def _search(
        self, index: LoadedIndex, query: np.ndarray, k: int, filters: Filters, exclude: int | None = None
    ) -> Neighbours:
        max_rows = self.settings.serving.filtered_search_max_rows
        # Handing a tiny search to a thread costs more than the search itself (~0.1 ms): small indexes search inline.
        if index.embeddings.size <= INLINE_SEARCH_MAX_FLOATS:
            found = nearest(index, query, k, filters, exclude, max_rows)
        else:
            found = await self._off_loop(nearest, index, query, k, filters, exclude, max_rows)
        if found.capped:
            self.metrics.capped_searches.inc()
        return found

    async def _off_loop(self, function: Callable[..., T], *args: object) -> T:
        return await anyio.to_thread.run_sync(function, *args, limiter=self._limiter)
