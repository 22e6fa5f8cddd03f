"""Playwright on Debian's Chromium (no browser downloads here): launch options and fixtures.

Import the fixtures into a test module: `from tests.support.browser import browser, new_page`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from playwright.sync_api import sync_playwright

from tests.conftest import require

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
VIEWPORT = {"width": 760, "height": 500}


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    require(os.path.exists(CHROMIUM), f"Chromium ({CHROMIUM})", "apt-get install chromium")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield chromium
        chromium.close()


@pytest.fixture
def new_page(browser: Any) -> Iterator[Callable[[], Any]]:
    """A factory of pages, each in its own browser context (its own cookies)."""
    contexts: list[Any] = []

    def make() -> Any:
        contexts.append(browser.new_context(viewport=VIEWPORT))
        return contexts[-1].new_page()

    yield make
    for context in contexts:
        context.close()
