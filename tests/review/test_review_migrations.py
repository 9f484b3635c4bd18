"""The review console's migration goes up and down on SQLite and PostgreSQL, and matches
the models (no drift for alembic to autogenerate)."""

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

TABLES = {
    "review_user",
    "review_advocate_case",
    "review_session",
    "review_cluster",
    "review_item",
    "review_decision",
    "review_appeal",
    "review_audit",
}


def tables(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_upgrade_and_downgrade(database_url: str) -> None:
    upgrade(database_url)
    assert tables(database_url) >= TABLES
    downgrade(database_url, "b7c3d9e1f402")  # the revision before the review tables
    remaining = tables(database_url)
    assert not remaining & TABLES
    assert "scan_items" in remaining
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
    review_diff = [d for d in diff if "review_" in repr(d)]
    assert review_diff == []
