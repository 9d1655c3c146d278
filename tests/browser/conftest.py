"""Browser tests: one Chromium per module (a fresh context per test), and a
portal on another origin. Each module starts its own presence server process
with the settings it needs (``office`` fixtures in the modules)."""

from __future__ import annotations

from typing import Iterator

import pytest
from playwright.sync_api import Browser, sync_playwright

from tests.support.browser import PortalServer, launch_chromium, require_chromium


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    require_chromium()
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="module")
def portal() -> Iterator[PortalServer]:
    """An intranet page on its own origin that embeds the office."""
    server = PortalServer().start()
    yield server
    server.stop()
