"""The web page in a real headless Chromium (Debian's, driven by Playwright): upload a photo, see thumbnails."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.conftest import jpeg_bytes, photo
from tests.serving.conftest import ServerProcess

if TYPE_CHECKING:
    from playwright.sync_api import Browser

pytestmark = pytest.mark.slow
THUMBNAILS_LOADED = "[...document.querySelectorAll('.result img')].every((img) => img.complete && img.naturalWidth > 0)"


def test_upload_a_photo_see_thumbnails_then_more_like_this(browser: Browser, live_server: ServerProcess, tmp_path: Path) -> None:
    query = tmp_path / "my-cat.jpg"
    query.write_bytes(jpeg_bytes(photo("chelsea")))
    page = browser.new_page()
    try:
        page.goto(live_server.url + "/")
        page.wait_for_selector("#index-info:has-text('20 items')")
        page.set_input_files("#file", str(query))
        page.wait_for_selector(".result")
        page.wait_for_function(THUMBNAILS_LOADED)
        cards = page.locator(".result")
        assert cards.count() == 12  # the page asks for 12
        first = cards.first
        assert first.get_attribute("data-item-id") in ("chelsea", "chelsea-mirror")
        assert "12.00" in first.locator(".price").inner_text()
        assert "score" in first.locator(".score").inner_text()
        assert "for your photo" in page.inner_text("#status")
        page.screenshot(path=str(tmp_path / "results.png"), full_page=True)

        page.select_option("select[name=category]", "space")
        page.wait_for_function("[...document.querySelectorAll('.result')].length === 6")
        space = page.locator(".result").first.get_attribute("data-item-id")
        page.locator(".result .more").first.click()
        page.wait_for_selector(f"#status:has-text('{space}')")
        similar = page.locator(".result").evaluate_all("(nodes) => nodes.map((node) => node.dataset.itemId)")
        assert space not in similar and len(similar) == 5
        assert all(item.split("-mirror")[0] in ("astronaut", "rocket", "hubble_deep_field") for item in similar)
    finally:
        page.close()


def test_a_bad_upload_shows_the_error_message(browser: Browser, live_server: ServerProcess, tmp_path: Path) -> None:
    bogus = tmp_path / "notes.jpg"
    bogus.write_text("not really a photo")
    page = browser.new_page()
    try:
        page.goto(live_server.url + "/")
        page.set_input_files("#file", str(bogus))
        page.wait_for_selector("#status.error:has-text('not a recognised image format')")
        assert page.locator(".result").count() == 0
    finally:
        page.close()
