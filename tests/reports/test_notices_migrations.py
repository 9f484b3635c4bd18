"""The notices migration goes up and down on SQLite and PostgreSQL and matches the models."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from redress.store.db import make_engine
from redress.store.metadata import load_all_models
from redress.store.migrate import downgrade, upgrade

# Migrations are tested from an empty database, not the test run's migrated template.
pytestmark = pytest.mark.unmigrated

TABLES = {"notice", "notice_item", "statement_of_reasons", "outbound_notice"}


def tables(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_upgrade_and_downgrade(database_url: str) -> None:
    upgrade(database_url)
    assert tables(database_url) >= TABLES
    downgrade(database_url, "b7e2f4c1d0a9")  # the revision before the notice tables
    remaining = tables(database_url)
    assert not remaining & TABLES
    assert "review_item" in remaining
    upgrade(database_url)
    assert tables(database_url) >= TABLES


def test_models_match_the_migration(database_url: str) -> None:
    upgrade(database_url)
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            diff = compare_metadata(MigrationContext.configure(connection), load_all_models())
    finally:
        engine.dispose()
    ours = [d for d in diff if any(t in repr(d) for t in TABLES)]
    assert ours == []
