"""The pipeline's migration goes up and down on SQLite and PostgreSQL."""

from __future__ import annotations

from sqlalchemy import inspect

from redress.store.db import make_engine
from redress.store.migrate import downgrade, upgrade

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
