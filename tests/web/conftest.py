"""Fixtures of the API tests: a fresh app per test, served in-process over httpx's
ASGITransport with its lifespan running, on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from web_support import Api, serving

from redress.config import Settings


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
