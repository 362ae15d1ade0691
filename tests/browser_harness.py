"""A real headless Chromium for the web tests, through Playwright, with screenshots on failure.

The browser is Debian's `chromium` (`scripts/ensure-chromium`, run by `make test`), driven with
`executable_path`: `playwright install` downloads a browser, which cannot work without internet.

    async def test_shop(pages: Pages) -> None:
        page = await pages.open("phone")
        await page.goto(url)

    async with open_page("desktop") as page:   # outside a fixture
        ...

Every page opened here is registered with the running test; when the test fails, each one still
open is saved as `test-artifacts/screenshots/<test name>-<n>.png`. This module is a pytest plugin
(`pytest_plugins` in tests/conftest.py): its one hook stores each phase's report on the test
item and changes nothing else; Playwright is imported only when a page is opened.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import AsyncIterator, Generator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from playwright.async_api import Page

PHONE: dict[str, Any] = {"width": 390, "height": 844}
DESKTOP: dict[str, Any] = {"width": 1280, "height": 800}
VIEWPORTS: dict[str, dict[str, Any]] = {
    "phone": {"viewport": PHONE, "is_mobile": True, "has_touch": True, "device_scale_factor": 2},
    "desktop": {"viewport": DESKTOP},
}
SCREENSHOTS = Path(__file__).resolve().parent.parent / "test-artifacts" / "screenshots"
TIMEOUT_MS = 10_000  # a missing element fails in seconds, not at pytest-timeout's 180 s

_reports = pytest.StashKey[dict[str, pytest.TestReport]]()
_current: pytest.Item | None = None  # the test running now, to name its screenshots
_live: dict[str, list[Page]] = {}  # test node id -> its pages still open, in opening order


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Generator[None, object, object]:
    global _current
    _current = item
    try:
        return (yield)
    finally:
        _current = None
        _live.pop(item.nodeid, None)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item) -> Generator[None, pytest.TestReport,
                                                               pytest.TestReport]:
    """Keep each phase's report on the item: a fixture's teardown then knows the test failed."""
    report = yield
    item.stash.setdefault(_reports, {})[report.when] = report
    return report


def failed(item: pytest.Item) -> bool:
    return any(report.failed for report in item.stash.get(_reports, {}).values())


def chromium_path() -> str:
    path = shutil.which("chromium")
    if path is None:
        pytest.fail("`chromium` is not on PATH: run scripts/ensure-chromium (make test does), "
                    "which installs Debian's chromium package", pytrace=False)
    return path


def screenshot_name(item: pytest.Item, n: int) -> Path:
    """`test_x[phone]` -> `test_x-phone-1.png`: a file name on every system."""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", item.name).strip("-")
    return SCREENSHOTS / f"{name}-{n}.png"


async def save_screenshots(item: pytest.Item) -> list[Path]:
    """A PNG of every page the test still has open; a page that cannot be captured is skipped."""
    saved = []
    for n, page in enumerate(_live.get(item.nodeid, []), 1):
        path = screenshot_name(item, n)
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            await page.screenshot(path=str(path), full_page=False)
        except Exception:  # a crashed or closed page must not hide the test's own failure
            continue
        saved.append(path)
    return saved


@asynccontextmanager
async def open_page(viewport: str = "desktop") -> AsyncIterator[Page]:
    """A fresh headless Chromium with one page (its own context: cookies, storage, viewport).

    The page is registered with the running test. Used on its own, a failure inside the block
    is captured here, before the browser closes; under the `pages` fixture the fixture's teardown
    captures it."""
    from playwright.async_api import async_playwright

    if viewport not in VIEWPORTS:
        raise ValueError(f"viewport {viewport!r}: one of {sorted(VIEWPORTS)}")
    executable = chromium_path()
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=executable, headless=True, args=["--no-sandbox"])
        try:
            context = await browser.new_context(**VIEWPORTS[viewport])
            context.set_default_timeout(TIMEOUT_MS)
            page = await context.new_page()
            item = _current
            if item is not None:
                _live.setdefault(item.nodeid, []).append(page)
            try:
                yield page
            except BaseException:
                if item is not None:
                    await save_screenshots(item)
                raise
            finally:
                if item is not None and page in _live.get(item.nodeid, []):
                    _live[item.nodeid].remove(page)
        finally:
            await browser.close()


class Pages:
    """Opens pages for one test and keeps them open until its teardown."""

    def __init__(self, stack: AsyncExitStack) -> None:
        self._stack = stack

    async def open(self, viewport: str = "desktop") -> Page:
        return await self._stack.enter_async_context(open_page(viewport))


@pytest.fixture
async def pages(request: pytest.FixtureRequest) -> AsyncIterator[Pages]:
    """Pages that live as long as the test; screenshots of all of them if it failed."""
    async with AsyncExitStack() as stack:
        yield Pages(stack)
        if failed(request.node):
            await save_screenshots(request.node)


async def screenshot(page: Page, name: str) -> Path:
    """Save a screenshot on purpose (not only on failure): test-artifacts/screenshots/NAME.png."""
    path = SCREENSHOTS / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(path))
    return path


async def no_horizontal_overflow(page: Page) -> None:
    """Nothing sticks out sideways: the page does not scroll horizontally."""
    widths = await page.evaluate(
        "() => [document.documentElement.scrollWidth, window.innerWidth]")
    scroll_width, inner_width = widths
    assert scroll_width <= inner_width, (
        f"horizontal overflow: scrollWidth {scroll_width} > innerWidth {inner_width}")
