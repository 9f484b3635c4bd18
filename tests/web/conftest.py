"""Fixtures of the web tests.

The API tests get a fresh app per test, served in-process over httpx's
ASGITransport with its lifespan running, on SQLite and on PostgreSQL. The
portal's browser tests get the system Chromium driven by Playwright; they skip
with the reason when Chromium or Playwright is missing, unless
``REDRESS_REQUIRE_SERVICES=1`` (CI), which makes them fail.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from web_support import Api, serving

from redress.config import Settings
from redress.web.browser import DEFAULT_CHROMIUM, PortalSite, headless_chromium

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

CHROMIUM = os.environ.get("REDRESS_CHROMIUM", DEFAULT_CHROMIUM)
REQUIRE_SERVICES = os.environ.get("REDRESS_REQUIRE_SERVICES") == "1"


def _browser_missing(reason: str) -> None:
    if REQUIRE_SERVICES:
        pytest.fail(f"{reason} (REDRESS_REQUIRE_SERVICES=1 forbids skipping)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def chromium_path() -> str:
    """Path of the system Chromium, once Chromium and Playwright are known to be there."""
    if not os.access(CHROMIUM, os.X_OK):
        _browser_missing(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    if importlib.util.find_spec("playwright") is None:
        _browser_missing("Playwright is not installed (pip install -e '.[dev]')")
    return CHROMIUM


@pytest.fixture(scope="module")
def chromium(chromium_path: str) -> Iterator[Browser]:
    """The system Chromium, headless, driven by Playwright (one per test module: Playwright's
    sync API holds an event loop while it runs, which would stop later async tests)."""
    with headless_chromium(chromium_path) as browser:
        yield browser


@pytest.fixture(scope="session")
def portal_site() -> Iterator[PortalSite]:
    """The harness page and the portal's static files on 127.0.0.1."""
    with PortalSite() as site:
        yield site


@pytest.fixture
def harness_page(chromium: Browser, portal_site: PortalSite) -> Iterator[Page]:
    """A fresh browser context on the harness page (nothing cached between tests)."""
    context = chromium.new_context()
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(portal_site.url + "/")
    yield page
    context.close()
    assert errors == [], f"uncaught errors in the page: {errors}"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def settings(redress_home: Path, database_url: str) -> Settings:
    return Settings(
        home=redress_home,
        database_url=database_url,
        queue_size=20,
        pipeline_threads=1,
        api_rate_per_second=10_000.0,
        api_rate_burst=10_000,
    )


@pytest.fixture
async def api(settings: Settings) -> AsyncIterator[Api]:
    async with serving(settings) as running:
        yield running
