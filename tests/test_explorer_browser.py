"""End to end: the explorer served by uvicorn, driven by a real headless Chromium through Playwright.

Skipped when Playwright or Chromium is missing, except under CI (env var CI set), where it must run.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator

import pytest

pytestmark = pytest.mark.browser

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _chromium() -> str | None:
    for candidate in (os.environ.get("LATENTATLAS_CHROMIUM"), shutil.which("chromium"), "/usr/bin/chromium"):
        if candidate and os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; CI must run the browser tests (it installs chromium)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def server_url(tiny_run) -> Iterator[str]:
    from explorer_server import serving
    from latentatlas.explorer import create_app

    with serving(create_app(tiny_run.path)) as port:
        yield f"http://127.0.0.1:{port}/"


@pytest.fixture(scope="module")
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("playwright is not installed")
    executable = _chromium()
    if executable is None:
        _unavailable("chromium is not installed")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, server_url):
    context = browser.new_context(viewport={"width": 1300, "height": 950})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    # A Content-Security-Policy violation is logged to the console: the page must need none.
    page.on(
        "console", lambda message: errors.append(message.text) if "Content Security Policy" in message.text else None
    )
    outside: list[str] = []
    page.on(
        "request",
        lambda request: outside.append(request.url) if not request.url.startswith((server_url, "data:")) else None,
    )
    page.goto(server_url)
    page.wait_for_selector("body[data-ready='1']", timeout=30_000)
    yield page
    assert errors == [], f"JavaScript errors: {errors}"
    assert outside == [], f"requests outside the explorer: {outside}"
    context.close()


def wait_until(page, expression: str, timeout: float = 30.0) -> None:
    """Poll a JavaScript expression from Python: the page's CSP forbids the eval that wait_for_function uses."""
    deadline = time.monotonic() + timeout
    while not page.evaluate(expression):
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {expression}")
        time.sleep(0.05)


def plane_pixel(page, fx: float, fy: float) -> tuple[float, float]:
    box = page.locator("#plane").bounding_box()
    return box["x"] + fx * box["width"], box["y"] + fy * box["height"]


def test_the_plane_shows_every_real_point(page, tiny_run):
    assert page.evaluate("state.points.length / 2") == len(tiny_run.zpoints())
    assert "real z-points in plane" in page.locator("#status").inner_text()
    assert page.locator("#sampler option").count() >= 8


def test_click_decodes_an_image(page):
    page.mouse.click(*plane_pixel(page, 0.5, 0.45))
    page.wait_for_selector("#decoded:not([hidden])")
    wait_until(page, "document.getElementById('decoded').src.startsWith('data:image/png;base64,')")
    wait_until(page, "document.getElementById('decoded').naturalWidth === 32")
    info = page.locator("#decoded-info").inner_text()
    assert "Mahalanobis distance" in info and "%" in info
    assert "face" in info


def test_drag_decodes_a_strip_along_the_path(page):
    page.fill("#steps", "6")
    page.select_option("#method", "slerp")
    page.mouse.move(*plane_pixel(page, 0.3, 0.7))
    page.mouse.down()
    page.mouse.move(*plane_pixel(page, 0.7, 0.3), steps=10)
    page.mouse.up()
    wait_until(page, "document.querySelectorAll('#strip img').length === 6")
    assert "slerp, 6 images" in page.locator("#strip-title").text_content()
    assert page.evaluate("state.path.points.length") == 6
    assert page.locator("#decoded").is_hidden()  # a drag is a path, not a click


def test_hovering_a_real_point_shows_its_image(page):
    x, y = page.evaluate(
        "(() => { const r = canvas.getBoundingClientRect(); "
        "const [px, py] = toPixel(state.points[0], state.points[1]); return [r.left + px, r.top + py]; })()"
    )
    page.mouse.move(x, y)
    wait_until(page, "document.getElementById('hovered').src.includes('/api/image/')")
    wait_until(page, "document.getElementById('hovered').naturalWidth === 32")
    wait_until(page, "document.getElementById('hovered-info').innerText.includes('z-point #')")


def test_samples_appear_as_points_and_images(page):
    page.select_option("#sampler", "gaussian")
    page.fill("#sample-n", "5")
    page.click("#sample")
    wait_until(page, "document.querySelectorAll('#samples img').length === 5")
    assert page.evaluate("state.samples.points.length") == 5
    assert "gaussian, n 5" in page.locator("#samples-title").text_content()


def test_principal_axes_and_shift_click_base(page):
    page.select_option("#basis", "pca")
    wait_until(page, "state.geometry && state.geometry.labels[0] === 'PC[0]'")
    x, y = page.evaluate(
        "(() => { const r = canvas.getBoundingClientRect(); "
        "const [px, py] = toPixel(state.points[8], state.points[9]); return [r.left + px, r.top + py]; })()"
    )
    page.keyboard.down("Shift")
    page.mouse.click(x, y)
    page.keyboard.up("Shift")
    assert page.evaluate("typeof state.base") == "number"
    assert "#" in page.locator("#base-info").inner_text()
    page.mouse.click(*plane_pixel(page, 0.55, 0.5))
    wait_until(page, "document.getElementById('decoded-info').innerText.includes('PC[0]')")


def test_an_invalid_plane_is_reported_not_sent(page):
    page.fill("#axis-y", page.input_value("#axis-x"))
    page.dispatch_event("#axis-y", "change")
    wait_until(page, "document.getElementById('status').classList.contains('error')")
    assert "different axes" in page.locator("#status").inner_text()


def test_points_are_coloured_by_a_factor(page, tiny_run):
    page.select_option("#colour", "subset")
    wait_until(page, "state.colour !== null && state.colour.column === 'subset'")
    bins = page.evaluate("Array.from(state.colour.bins)")
    rows = page.evaluate("Array.from(state.rows)")
    subsets = tiny_run.metadata()["subset"].to_numpy()
    assert bins == [0 if subsets[row] == "train" else 1 for row in rows]
    assert page.locator("#colour-legend").inner_text().split() == ["train", "val"]
    # the canvas really shows both colours (orange validation points among the blue ones)
    count_orange = (
        "(() => { const layer = pointsLayer.getContext('2d');"
        " const d = layer.getImageData(0, 0, pointsLayer.width, pointsLayer.height).data; let orange = 0;"
        " for (let i = 0; i < d.length; i += 4) if (d[i] > 200 && d[i + 1] > 80 && d[i + 2] < 80) orange++;"
        " return orange; })()"
    )
    assert page.evaluate(count_orange) > 0
    page.select_option("#colour", "")
    wait_until(page, "state.colour === null")


@pytest.mark.slow
def test_the_umap_map_decodes_the_nearest_real_point(page):
    page.select_option("#basis", "umap")
    wait_until(page, "state.geometry && state.geometry.labels[0] === 'UMAP[0]'", timeout=120)
    assert page.locator("#axis-x").is_disabled()
    x, y = page.evaluate(
        "(() => { const r = canvas.getBoundingClientRect(); "
        "const [px, py] = toPixel(state.points[4], state.points[5]); return [r.left + px, r.top + py]; })()"
    )
    page.mouse.click(x, y)
    row = page.evaluate("state.rows[2]")
    wait_until(page, f"document.getElementById('decoded-info').innerText.includes('#{row} nearest')")
    page.mouse.move(*plane_pixel(page, 0.3, 0.3))
    page.mouse.down()
    page.mouse.move(*plane_pixel(page, 0.6, 0.6), steps=5)
    page.mouse.up()
    wait_until(page, "document.getElementById('status').classList.contains('error')")
    assert "linear basis" in page.locator("#status").inner_text()
