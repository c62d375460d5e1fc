"""``POST /admin/index``: load, verify and atomically swap in ``<index root>/<version>`` (the local deploy's roll).

Mounted only when an admin token is configured; callers present it as ``Authorization: Bearer <token>``.
"""

from __future__ import annotations

import hmac
from pathlib import Path

from litestar import Controller, post
from litestar.connection import ASGIConnection
from litestar.handlers import BaseRouteHandler
from litestar.types import Guard

from serving import examples
from serving.errors import INVALID_INDEX, ApiError, ForbiddenError, UnauthorizedError, error_responses
from serving.openapi import ADMIN_SECURITY, ok
from serving.schemas import SwapRequest, SwapResponse
from serving.service import SearchService


def bearer_token_guard(token: str) -> Guard:
    expected = f"Bearer {token}".encode()

    def guard(connection: ASGIConnection, _: BaseRouteHandler) -> None:  # type: ignore[type-arg]
        presented = connection.headers.get("authorization")
        if not presented:
            raise UnauthorizedError("this endpoint needs an 'Authorization: Bearer <admin token>' header")
        if not hmac.compare_digest(presented.encode(), expected):
            raise ForbiddenError("the admin token is wrong")

    return guard


class AdminController(Controller):
    path = "/admin"
    tags = ["admin"]

    @post(
        "/index", status_code=200, operation_id="swapIndex", summary="Swap in another index version",
        security=[{ADMIN_SECURITY: []}],
        description="Loads a fetched index version from `<index root>/<version>` on the server (nothing else), verifies "
        "that its manifest names that version and lists exactly its files, their checksums and its model, "
        "then swaps it in atomically: requests in flight finish on the old version, new ones use the new one. "
        "A version that fails verification is refused and the served one stays. Needs the admin bearer token; "
        "the route exists only when the server has one.",
        responses={
            **ok(SwapResponse, "The version now served, and the one before.", examples.SWAP, "Roll forward"),
            **error_responses(400, 401, 403, 422, examples={
                400: ("bad_request", "directory must be an absolute path, not 'indexes/20260102T000000Z'"),
                422: (INVALID_INDEX, "cannot load the index in /srv/indexes/20260102T000000Z: no _COMMIT marker"),
            }),
        },
    )
    async def swap_index(self, data: SwapRequest, service: SearchService) -> SwapResponse:
        """Only ``<index root>/<version>`` is loaded, and only if its manifest names that version and lists
        exactly its files, each with the right checksum."""
        directory = Path(data.directory)
        if not directory.is_absolute():
            raise ApiError(f"directory must be an absolute path, not {data.directory!r}")
        loaded, previous = await service.swap_index(directory)
        return SwapResponse(
            version=loaded.version, item_count=loaded.size, previous_version=previous.version if previous else None
        )
