"""The web page in a real headless Chromium (Debian's, driven by Playwright, with no network): upload a photo, see
thumbnails, "More like this" and back, plain-language errors, the zero-results hint, and the layout at desktop and
phone widths. Screenshots go to data/screenshots (git-ignored) for people to look at."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.conftest import jpeg_bytes, photo, png_bytes
from tests.serving.browser import DESKTOP, PHONE, offline_page, screenshot
from tests.serving.conftest import ServerProcess

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

pytestmark = pytest.mark.slow
THUMBNAILS_LOADED = "[...document.querySelectorAll('.result img')].every((img) => img.complete && img.naturalWidth > 0)"
# Any image on the page that is shown but did not decode: what the browser draws as a broken-image icon.
BROKEN_IMAGES = """[...document.images].filter((img) => img.offsetParent !== null && img.getAttribute('src')
    && img.complete && img.naturalWidth === 0).map((img) => img.getAttribute('src'))"""
CARD_BOXES = "[...document.querySelectorAll('.result')].map((card) => card.getBoundingClientRect().toJSON())"


def open_page(page: Page, url: str) -> None:
    page.goto(url + "/")
    page.wait_for_selector("#index-info:has-text('20 items')")


def upload(page: Page, path: Path) -> None:
    page.set_input_files("#file", str(path))


def search_with_the_cat(page: Page, tmp_path: Path) -> None:
    query = tmp_path / "my-cat.jpg"
    query.write_bytes(jpeg_bytes(photo("chelsea")))
    upload(page, query)
    page.wait_for_selector("#status:has-text('for your photo')")
    page.wait_for_function(THUMBNAILS_LOADED)


def test_search_then_more_like_this_then_back(browser: Browser, live_server: ServerProcess, tmp_path: Path) -> None:
    with offline_page(browser, live_server.url, DESKTOP) as (page, elsewhere):
        open_page(page, live_server.url)
        assert page.locator("link[rel=icon]").get_attribute("href") == "/static/favicon.svg"
        assert page.request.get(live_server.url + "/static/favicon.svg").headers["content-type"].startswith("image/svg")
        search_with_the_cat(page, tmp_path)
        cards = page.locator(".result")
        assert cards.count() == 12  # the page asks for 12
        first = cards.first
        assert first.get_attribute("data-item-id") in ("chelsea", "chelsea-mirror")
        assert "$12.00" in first.locator(".price").inner_text()  # the catalog's currency, USD by default
        assert first.locator(".category").inner_text() == "pets"
        assert re.fullmatch(r"Very similar · (0\.9\d|1\.00) of 1", first.locator(".similarity").inner_text())
        assert "1 is the same picture" in page.inner_text("#scale")
        assert page.locator(".similarity:has-text('Loosely related')").count() > 0
        # The query is shown: the uploaded photo, decoded.
        assert page.inner_text("#query-title") == "Your photo"
        assert page.eval_on_selector("#query-image", "(img) => img.src.startsWith('blob:') && img.naturalWidth > 0")
        assert page.is_hidden("#back")
        # Thumbnails keep their proportions and are never blown up past their own size.
        fits = page.eval_on_selector_all(".result img", "(imgs) => imgs.map((img) => getComputedStyle(img).objectFit)")
        assert set(fits) == {"scale-down"}
        screenshot(page, "web-desktop-results")

        page.select_option("select[name=category]", "space")
        page.wait_for_function("[...document.querySelectorAll('.result')].length === 6")
        space = page.locator(".result").first
        space_id, space_image = space.get_attribute("data-item-id"), space.locator("img").get_attribute("src")
        space.locator(".more").click()
        page.wait_for_selector(f"#query-title:has-text('More like “{space_id}”')")
        # The old photo is replaced by the item being searched, with a way back.
        assert page.get_attribute("#query-image", "src") == space_image
        page.wait_for_function("document.querySelector('#query-image').naturalWidth > 0")
        assert page.inner_text("#back") == "← Back to your photo"
        similar = page.locator(".result").evaluate_all("(nodes) => nodes.map((node) => node.dataset.itemId)")
        assert space_id not in similar and len(similar) == 5
        assert all(item.split("-mirror")[0] in ("astronaut", "rocket", "hubble_deep_field") for item in similar)
        page.wait_for_function(THUMBNAILS_LOADED)
        screenshot(page, "web-desktop-more-like-this")

        page.click("#back")
        page.wait_for_selector("#query-title:has-text('Your photo')")
        assert page.eval_on_selector("#query-image", "(img) => img.src.startsWith('blob:')")
        page.wait_for_selector("#status:has-text('for your photo')")
        assert page.is_hidden("#back")
        assert not page.evaluate(BROKEN_IMAGES)
        assert not elsewhere, elsewhere


def test_errors_are_in_plain_words_and_lose_nothing(browser: Browser, live_server: ServerProcess, tmp_path: Path) -> None:
    bogus = tmp_path / "notes.jpg"
    bogus.write_text("not really a photo")
    tiny = tmp_path / "tiny.png"
    tiny.write_bytes(png_bytes(photo("chelsea").resize((8, 8))))
    with offline_page(browser, live_server.url, DESKTOP) as (page, elsewhere):
        open_page(page, live_server.url)
        upload(page, bogus)  # before any search: nothing to keep, and no broken preview
        page.wait_for_selector("#status.error:has-text('not a picture we can read')")
        assert page.is_hidden("#query") and page.locator(".result").count() == 0
        assert not page.evaluate(BROKEN_IMAGES)

        search_with_the_cat(page, tmp_path)
        for rejected, message in ((bogus, "not a picture we can read"), (tiny, "too small to search with (8x8")):
            upload(page, rejected)
            page.wait_for_selector(f"#status.error:has-text('{message}')")
            # The rejected file replaced nothing: the photo and its results stay, and no image is broken.
            assert page.inner_text("#query-title") == "Your photo" and page.locator(".result").count() == 12
            assert not page.evaluate(BROKEN_IMAGES)

        page.fill("input[name=k]", "101")
        page.dispatch_event("input[name=k]", "change")
        page.wait_for_selector("#status.error")
        assert page.inner_text("#status") == "Results must be between 1 and 100"
        page.fill("input[name=k]", "12")
        page.fill("input[name=max_price]", "10")
        page.fill("input[name=min_price]", "50")
        page.dispatch_event("input[name=min_price]", "change")
        page.wait_for_selector("#status.error:has-text('above')")
        assert page.inner_text("#status") == "“Price from” (50) is above “to” (10)"
        assert page.locator(".result").count() > 0  # the last answer that succeeded stays on the page
        screenshot(page, "web-desktop-error")
        assert not elsewhere, elsewhere


def test_zero_results_give_a_hint_and_a_way_out(browser: Browser, live_server: ServerProcess, tmp_path: Path) -> None:
    with offline_page(browser, live_server.url, DESKTOP) as (page, _):
        open_page(page, live_server.url)
        search_with_the_cat(page, tmp_path)
        page.select_option("select[name=category]", "pets")
        page.fill("input[name=max_price]", "5")  # the cats cost 12
        page.dispatch_event("input[name=max_price]", "change")
        page.wait_for_selector("#hint:has-text('No items match these filters')")
        assert page.locator(".result").count() == 0 and page.inner_text("#status").startswith("0 results")
        page.click("#clear-filters")
        page.wait_for_function("document.querySelectorAll('.result').length === 12")
        assert page.is_hidden("#hint")
        assert page.input_value("select[name=category]") == "" and page.input_value("input[name=k]") == "12"


def test_a_phone_shows_two_columns(browser: Browser, live_server: ServerProcess, tmp_path: Path) -> None:
    with offline_page(browser, live_server.url, PHONE) as (page, elsewhere):
        open_page(page, live_server.url)
        search_with_the_cat(page, tmp_path)
        boxes = page.evaluate(CARD_BOXES)
        assert len({round(box["left"]) for box in boxes}) >= 2  # columns
        assert max(box["right"] for box in boxes) <= PHONE["width"]  # nothing runs off the screen
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        screenshot(page, "web-phone-results")
        page.locator(".result .more").first.click()
        page.wait_for_selector("#query-title:has-text('More like')")
        page.wait_for_function(THUMBNAILS_LOADED)
        assert page.is_visible("#back")
        screenshot(page, "web-phone-more-like-this")
        assert not elsewhere, elsewhere
