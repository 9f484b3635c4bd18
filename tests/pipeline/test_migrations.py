"""The pipeline's migration goes up and down on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect

from redress.store.db import make_engine
from redress.store.migrate import downgrade, upgrade

# Migrations are tested from an empty database, not the test run's migrated template.
pytestmark = pytest.mark.unmigrated

TABLES = {"api_keys", "scan_items", "scan_media", "scan_actions"}


def tables(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_upgrade_and_downgrade(database_url: str) -> None:
    upgrade(database_url)
    assert tables(database_url) >= TABLES
    downgrade(database_url, "7a1e1e9a0001")  # the revision before the pipeline tables
    assert not tables(database_url) & TABLES
    upgrade(database_url)
    assert tables(database_url) >= TABLES


def columns(url: str, table: str) -> set[str]:
    engine = make_engine(url)
    try:
        return {c["name"] for c in inspect(engine).get_columns(table)}
    finally:
        engine.dispose()


def test_scan_item_evidence_column_up_and_down(database_url: str) -> None:
    upgrade(database_url)
    assert "evidence_item_id" in columns(database_url, "scan_items")
    downgrade(database_url, "c0ffee8a0008")  # the revision before the evidence column
    assert "evidence_item_id" not in columns(database_url, "scan_items")
    assert tables(database_url) >= TABLES
    upgrade(database_url)
    assert "evidence_item_id" in columns(database_url, "scan_items")
