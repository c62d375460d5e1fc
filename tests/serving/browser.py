"""Debian's Chromium driven by Playwright, kept offline: every request that is not to the server under test is
refused and recorded, so a page that needs the internet fails its test instead of passing on a developer's laptop."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.conftest import ROOT

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page, Route

CHROMIUM = Path("/usr/bin/chromium")
# Never let Chromium reach out: no updates, sync, or background fetches during the test.
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync",
]
# Screenshots for people to look at (git-ignored): the page at desktop and phone widths, the API docs.
SCREENSHOTS = ROOT / "data" / "screenshots"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}


def launch_chromium() -> Iterator[Browser]:
    executable = str(CHROMIUM) if CHROMIUM.exists() else shutil.which("chromium")
    if executable is None:
        pytest.skip("Debian's chromium is not installed (apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@contextmanager
def offline_page(browser: Browser, origin: str, viewport: dict[str, int] | None = None) -> Iterator[tuple[Page, list[str]]]:
    """A page that may load only from ``origin``; the second value lists every other URL it tried to load."""
    page = browser.new_page(viewport=viewport or DESKTOP)  # type: ignore[arg-type]
    elsewhere: list[str] = []

    def only_the_server(route: Route) -> None:
        if route.request.url.startswith(origin + "/") or route.request.url.startswith(("data:", "blob:")):
            route.continue_()
        else:
            elsewhere.append(route.request.url)
            route.abort("internetdisconnected")

    page.route("**/*", only_the_server)
    try:
        yield page, elsewhere
    finally:
        page.close()


def screenshot(page: Page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
