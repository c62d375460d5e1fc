"""The index being served, swapped atomically for a new verified version.

A request reads :attr:`IndexHolder.current` once and uses that object to the end, so in-flight
requests finish on the version they started with; a new version is fully loaded and verified
before the single reference assignment that makes it visible.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path

import anyio.to_thread

from imagesearch.errors import ArtifactError
from imagesearch.index_store import LoadedIndex, load_index

log = logging.getLogger(__name__)


class IndexHolder:
    def __init__(
        self,
        model_id: str,
        on_swap: Callable[[LoadedIndex], None] | None = None,
    ) -> None:
        self.model_id = model_id
        self._current: LoadedIndex | None = None
        self._on_swap = on_swap
        self._swap_lock = asyncio.Lock()

    @property
    def current(self) -> LoadedIndex | None:
        return self._current

    def try_load_at_start(self, directory: Path) -> LoadedIndex | None:
        """Start-up (blocking): serve the committed index in ``directory`` if there is one, else wait for a swap."""
        try:
            return self._install(self._load(directory))
        except ArtifactError as exc:
            log.warning("no index served yet: %s", exc)
            return None

    async def swap(self, directory: Path, version: str | None = None) -> tuple[LoadedIndex, LoadedIndex | None]:
        """Load + verify ``directory`` (holding ``version``, when given) off the event loop, then swap it in:
        (new, previous).

        Raises :class:`ArtifactError` and keeps serving the old index when verification fails.
        """
        async with self._swap_lock:
            previous = self._current
            try:
                loaded = await anyio.to_thread.run_sync(self._load, directory, version)
            except ArtifactError:
                raise
            except Exception as exc:  # a verified but unloadable version is still a bad version, not a server fault
                raise ArtifactError(f"cannot load the index in {directory}: {exc}") from exc
            return self._install(loaded), previous

    def _load(self, directory: Path, version: str | None = None) -> LoadedIndex:
        return load_index(directory, self.model_id, version)

    def _install(self, index: LoadedIndex) -> LoadedIndex:
        self._current = index
        log.info("serving index version %s (%d items)", index.version, index.size)
        if self._on_swap is not None:
            self._on_swap(index)
        return index
