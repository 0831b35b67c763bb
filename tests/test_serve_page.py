"""The web page of ``facecascade serve`` in a real browser: the real server (uvicorn on a free
local port) and Debian's Chromium driven by Playwright. A photo uploaded through the page shows
as many faces (drawn, in the table, in the JSON) as the API finds in it; a non-image shows an
error card and the page goes on working; at phone width nothing scrolls sideways.

Chromium that cannot start fails these tests (they never skip)."""

from __future__ import annotations

import base64
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from .serving import LocalServer
from .shared_data import require

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PHOTO = "dlib_faces/2008_002506.jpg"  # 3 faces
# FACECASCADE_DOCS_SCREENSHOT=docs/serve-page.png also saves the desktop view there (the docs' picture).
DOCS_SCREENSHOT = os.environ.get("FACECASCADE_DOCS_SCREENSHOT")
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 360, "height": 740}
TIMEOUT_MS = 60_000  # one analysis on a busy 2-core machine, with margin
DONE = '[data-testid="result"][data-state="done"]'
FAILED = '[data-testid="result"][data-state="error"]'


@pytest.fixture(scope="module")
def server() -> Iterator[LocalServer]:
    local = LocalServer()
    try:
        local.start()
        yield local
    finally:
        local.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import Error, sync_playwright

    if shutil.which(CHROMIUM) is None:
        pytest.fail(f"Chromium is not installed at {CHROMIUM} (apt-get install chromium); the page tests need it")
    with sync_playwright() as p:
        try:
            chromium = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        except Error as exc:
            pytest.fail(f"Chromium at {CHROMIUM} could not start through Playwright: {exc}", pytrace=False)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def open_page(server: LocalServer, browser: Any) -> Iterator[Any]:
    """``open_page(viewport)``: a fresh page at ``/``; each page's uncaught script errors fail the test."""
    contexts, errors = [], []

    def _open(viewport: dict[str, int]) -> Any:
        context = browser.new_context(viewport=viewport)
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(server.url + "/")
        page.wait_for_selector('body[data-ready="true"]')
        return page

    yield _open
    for context in contexts:
        context.close()
    assert not errors, f"script errors on the page: {errors}"


@pytest.fixture(scope="module")
def api_answer(server: LocalServer) -> dict[str, Any]:
    """The API's own answer for the photo, as the page asks for it."""
    data = require(PHOTO).read_bytes()
    with httpx.Client(base_url=server.url, trust_env=False, timeout=TIMEOUT_MS / 1000) as client:
        response = client.post(
            "/v1/analyze", params={"attributes": "top5"}, content=data, headers={"Content-Type": "image/jpeg"}
        )
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["faces"], "the API found no face in the shared photo: the comparison would prove nothing"
    return answer


def upload(page: Any, path: Path, state: str = DONE) -> Any:
    """Pick ``path`` through the page's file input; the card once it is done (or failed)."""
    before = page.locator(state).count()
    page.get_by_label("Choose photos").set_input_files(str(path))
    page.wait_for_function(
        "([selector, n]) => document.querySelectorAll(selector).length > n", arg=[state, before], timeout=TIMEOUT_MS
    )
    return page.locator(f'{state}[data-file="{path.name}"]').first


def page_faces(card: Any) -> tuple[int, int, dict[str, Any]]:
    """The card's face count (``data-faces``), its table's rows and its parsed JSON."""
    return (
        int(card.get_attribute("data-faces")),
        card.locator('[data-testid="faces-table"] tbody tr').count(),
        json.loads(card.locator('[data-testid="json"]').text_content()),
    )


def not_image(tmp_path: Path) -> Path:
    path = tmp_path / "notes.txt"
    path.write_text("this is not a photo\n")
    return path


def no_horizontal_scroll(page: Any) -> None:
    width = page.evaluate("document.scrollingElement.scrollWidth")
    assert width <= PHONE["width"] + 1, f"the page is {width} px wide at a {PHONE['width']} px viewport"


def test_photo_shows_the_faces_the_api_finds(
    open_page: Any, api_answer: dict[str, Any], tmp_path: Path, server: LocalServer
) -> None:
    photo = require(PHOTO)
    page = open_page(DESKTOP)
    card = upload(page, photo)

    expected = len(api_answer["faces"])
    faces, rows, shown = page_faces(card)
    assert faces == expected == 3
    assert rows == expected
    assert (shown["width"], shown["height"]) == (api_answer["width"], api_answer["height"])
    assert len(shown["faces"]) == expected
    for got, want in zip(shown["faces"], api_answer["faces"]):
        assert got["box"] == pytest.approx(want["box"], abs=0.5)
        assert len(got["landmarks"]) == 5
        assert len(got["attributes"]) == 5  # attributes=top5

    canvas = card.locator('[data-testid="canvas"]')
    size = canvas.evaluate("c => [c.width, c.height]")
    assert size == [api_answer["width"], api_answer["height"]]
    assert f"{expected} faces" in canvas.get_attribute("aria-label")
    first_row = card.locator('[data-testid="faces-table"] tbody tr').first
    assert first_row.locator("th").inner_text() == "1"
    assert f"{api_answer['faces'][0]['score']:.3f}" in first_row.inner_text()
    timing = card.locator('[data-testid="timing"]').inner_text()
    assert "server" in timing and "round trip" in timing and "ms" in timing, timing
    assert "3 faces" in page.locator('[data-testid="status"]').inner_text()

    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.url)
    card.locator('[data-testid="copy-json"]').click()
    page.wait_for_function("document.querySelector('#status').textContent.startsWith('Copied')")
    assert json.loads(page.evaluate("navigator.clipboard.readText()")) == shown

    page.screenshot(path=tmp_path / "desktop.png", full_page=True)
    page.screenshot(path=tmp_path / "view.png")
    assert (tmp_path / "view.png").stat().st_size > 10_000
    if DOCS_SCREENSHOT:
        shutil.copyfile(tmp_path / "view.png", DOCS_SCREENSHOT)


def test_non_image_shows_an_error_and_the_page_keeps_working(open_page: Any, tmp_path: Path) -> None:
    photo = require(PHOTO)
    page = open_page(DESKTOP)
    upload(page, photo)

    failed = upload(page, not_image(tmp_path), FAILED)
    message = failed.locator('[data-testid="error"]')
    assert message.is_visible()
    assert "415 unsupported media type" in message.inner_text()
    assert "text/plain" in message.inner_text()  # the server's detail
    assert failed.locator('[data-testid="canvas"]').is_hidden()
    assert "failed" in page.locator('[data-testid="status"]').inner_text()

    upload(page, photo)  # still works after the error
    assert page.locator(DONE).count() == 2
    assert page.locator(FAILED).count() == 1
    page.screenshot(path=tmp_path / "error.png", full_page=True)


def test_keyboard_opens_the_picker_from_the_drop_zone(open_page: Any, api_answer: dict[str, Any]) -> None:
    page = open_page(DESKTOP)
    # Playwright asks Chromium to intercept pickers without awaiting it: listen first, and let a
    # round trip pass, so that the first key's picker is caught.
    page.on("filechooser", lambda chooser: None)
    page.evaluate("0")
    page.keyboard.press("Tab")  # the skip link
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "drop-zone"
    assert page.evaluate("getComputedStyle(document.activeElement).outlineStyle") == "solid"  # focus shows
    for done, key in enumerate(("Enter", " "), start=1):  # one picker at a time: each is answered
        with page.expect_file_chooser(timeout=10_000) as chooser:
            page.keyboard.press(key)
        assert chooser.value.is_multiple()
        chooser.value.set_files(str(require(PHOTO)))
        page.wait_for_function(f"document.querySelectorAll('{DONE}').length === {done}")
        assert int(page.locator(DONE).first.get_attribute("data-faces")) == len(api_answer["faces"])

    assert page.locator("#status").get_attribute("aria-live") == "polite"
    assert page.locator("#drop-zone").get_attribute("role") == "button"
    headers = page.locator(DONE).first.locator('thead th[scope="col"]').all_inner_texts()
    assert headers[0] == "#" and headers[1] == "Score"


def test_dropped_photo_is_analyzed(open_page: Any, api_answer: dict[str, Any]) -> None:
    page = open_page(DESKTOP)
    photo = require(PHOTO)
    transfer = page.evaluate_handle(
        """([name, b64]) => {
            const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
            const transfer = new DataTransfer();
            transfer.items.add(new File([bytes], name, { type: "image/jpeg" }));
            return transfer;
        }""",
        [photo.name, base64.b64encode(photo.read_bytes()).decode()],
    )
    zone = page.locator("#drop-zone")
    zone.dispatch_event("dragenter", {"dataTransfer": transfer})
    assert "dragging" in zone.get_attribute("class")
    zone.dispatch_event("drop", {"dataTransfer": transfer})
    page.wait_for_selector(DONE)
    assert "dragging" not in zone.get_attribute("class")
    assert int(page.locator(DONE).get_attribute("data-faces")) == len(api_answer["faces"])


def test_phone_width_has_no_horizontal_scroll(open_page: Any, api_answer: dict[str, Any], tmp_path: Path) -> None:
    page = open_page(PHONE)
    no_horizontal_scroll(page)

    card = upload(page, require(PHOTO))
    assert page_faces(card)[0] == len(api_answer["faces"])
    box = card.locator('[data-testid="canvas"]').bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
    upload(page, not_image(tmp_path), FAILED)
    no_horizontal_scroll(page)
    page.screenshot(path=tmp_path / "phone.png", full_page=True)
