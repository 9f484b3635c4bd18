"""The portal's migration (the PIN lock-out table) goes up and down on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from redress.store.migrate import current, downgrade, upgrade

# Migrations are tested from an empty database, not the test run's migrated template.
pytestmark = pytest.mark.unmigrated

PORTAL_REVISION = "b7c3d9e1f402"
BEFORE = "5a1e0c7d9b21"


def tables(url: str) -> set[str]:
    engine = sa.create_engine(url)
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_pin_lock_table_up_and_down(database_url: str) -> None:
    upgrade(database_url, PORTAL_REVISION)
    assert "portal_pin_lock" in tables(database_url)
    assert current(database_url) == (PORTAL_REVISION,)
    downgrade(database_url, BEFORE)
    assert "portal_pin_lock" not in tables(database_url)
    assert "victim_case" in tables(database_url)
    upgrade(database_url)
    assert "portal_pin_lock" in tables(database_url)
