"""Fixtures of the store tests: a migrated database on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from redress.index import BruteForceIndex
from redress.store.db import make_engine
from redress.store.migrate import upgrade
from redress.store.sync import IndexFollower, SeenFollower


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """An engine on a database upgraded to the newest schema by Alembic."""
    upgrade(database_url)
    eng = make_engine(database_url)
    try:
        yield eng
    finally:
        eng.dispose()


@pytest.fixture
def follower(engine: Engine) -> Iterator[IndexFollower]:
    """A started bank-entry follower on BruteForceIndex."""
    f = IndexFollower(engine, BruteForceIndex)
    f.start()
    yield f
    f.stop()


@pytest.fixture
def seen(engine: Engine) -> SeenFollower:
    """A seen-media follower on BruteForceIndex."""
    return SeenFollower(engine, BruteForceIndex)
