"""How many copies of a search request's body the server holds: the figures behind serving/memory_budget.py's
BODY_COPIES.

    PYTHONPATH=. .venv/bin/python bench/body_copies.py [--mib 10]

Sends one ``POST /v1/search`` of ``--mib`` MiB through the real app (serving.app.create_app, its middleware and
serving/uploads.py), in this process, as uvicorn delivers a body: 64 KiB ``http.request`` messages. No index is
loaded, so the request ends with 503 right after its body is read: what is measured is reading it. tracemalloc
gives the peak of the bytes allocated while the request runs and what is still allocated when the handler has the
image (the copies the decode then runs beside), each divided by the body's length. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import tracemalloc
from typing import Any

from imagesearch.settings import Settings
from serving.app import create_app
from serving.uploads import read_image
from tests.serving.hostile_inputs import BOUNDARY, image_form

CHUNK = 64 * 1024  # uvicorn's flow-control high-water mark: what one receive() brings at most


def scope_for(content_type: str, length: int) -> dict[str, Any]:
    return {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
        "path": "/v1/search", "raw_path": b"/v1/search", "query_string": b"", "root_path": "",
        "headers": [(b"content-type", content_type.encode()), (b"content-length", str(length).encode())],
        "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8000), "state": {},
    }


def measure(app: Any, content_type: str, body: bytes) -> tuple[float, float]:
    """(peak, held while decoding) allocated bytes over the body's length."""
    held: list[int] = []
    original = read_image

    async def read_and_note(*args: Any) -> bytes:
        data = await original(*args)
        held.append(tracemalloc.get_traced_memory()[0])
        return data

    import serving.api  # the handler's own reference, so the note sees the app's real path

    serving.api.read_image = read_and_note  # type: ignore[assignment]
    chunks = [body[i : i + CHUNK] for i in range(0, len(body), CHUNK)]
    del body

    async def receive() -> dict[str, Any]:
        chunk = bytes(memoryview(chunks.pop(0))) if chunks else b""  # a fresh object, as uvicorn's are
        return {"type": "http.request", "body": chunk, "more_body": bool(chunks)}

    async def send(message: dict[str, Any]) -> None:
        pass

    length = sum(map(len, chunks))
    tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]  # the chunks, made before, stand for the socket: untraced
    try:
        asyncio.run(app(scope_for(content_type, length), receive, send))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        serving.api.read_image = original  # type: ignore[assignment]
    return (peak - base) / length, (held[0] - base) / length if held else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=float, default=10)
    args = parser.parse_args()
    size = int(args.mib * 1024 * 1024) - 70_000  # the multipart form must stay under the body cap too
    image = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * (size // 256)
    app = create_app(Settings.from_env({"IMAGESEARCH_INDEX_DIR": "/nonexistent"}))
    rows = [
        ("raw image/png body", *measure(app, "image/png", image)),
        ("multipart/form-data, one image part", *measure(app, f"multipart/form-data; boundary={BOUNDARY}",
                                                         image_form(image))),
    ]
    print(f"| body ({len(image) / 2**20:.1f} MiB image, 64 KiB messages) | peak copies while read | copies held while "
          "decoding |\n|---|---|---|")
    print("\n".join(f"| {name} | {peak:.2f} | {held:.2f} |" for name, peak, held in rows))


if __name__ == "__main__":
    main()
