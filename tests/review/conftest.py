"""Fixtures of the review console tests (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from review_support import Console, console

from redress.config import Settings


@pytest.fixture
def settings(redress_home: Path, database_url: str) -> Settings:
    return Settings(home=redress_home, database_url=database_url, pipeline_threads=1)


@pytest.fixture
def review(settings: Settings) -> Iterator[Console]:
    with console(settings) as running:
        yield running
