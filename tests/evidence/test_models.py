"""The evidence migration, up and down, on SQLite and PostgreSQL, matches the models."""

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
    "evidence_ledger_entries",
    "evidence_ledger_nodes",
    "evidence_ledger_head",
    "evidence_checkpoints",
    "evidence_items",
}


def test_migration_up_matches_models_and_down_removes(database_url: str) -> None:
    upgrade(database_url)
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            assert set(inspect(conn).get_table_names()) >= TABLES
            diff = compare_metadata(
                MigrationContext.configure(conn, opts={"compare_type": True}), load_all_models()
            )
            ours = [d for d in diff if "evidence" in repr(d)]
            assert ours == []
            head = conn.exec_driver_sql("SELECT id, size FROM evidence_ledger_head").all()
            assert [tuple(r) for r in head] == [(1, 0)]
        downgrade(database_url)
        with engine.connect() as conn:
            assert not TABLES & set(inspect(conn).get_table_names())
    finally:
        engine.dispose()
