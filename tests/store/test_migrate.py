"""Store migrations up and down on SQLite and PostgreSQL; the audit log stays append-only."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from redress.store.db import make_engine
from redress.store.interfaces import AuditAction
from redress.store.migrate import current, downgrade, ensure_schema, heads, upgrade
from redress.store.models import AuditEvent
from redress.store.store import SqlAuditLog

# Migrations are tested from an empty database, not the test run's migrated template.
pytestmark = pytest.mark.unmigrated

STORE_TABLES = {
    "audit_event",
    "bank",
    "bank_entry",
    "case_entry",
    "entry_hash",
    "import_checkpoint",
    "index_change",
    "match",
    "seen_hash",
    "seen_item",
    "sighting",
    "victim_case",
}


def tables(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_upgrade_downgrade_upgrade(database_url: str) -> None:
    upgrade(database_url)
    assert tables(database_url) >= STORE_TABLES
    assert current(database_url) == heads()
    downgrade(database_url, "base")
    assert tables(database_url) & STORE_TABLES == set()
    assert current(database_url) == ()
    upgrade(database_url)
    assert tables(database_url) >= STORE_TABLES


def test_audit_log_refuses_update_and_delete(database_url: str) -> None:
    upgrade(database_url)
    engine = make_engine(database_url)
    try:
        with Session(engine) as s:
            SqlAuditLog(s).append("admin", AuditAction.BANK_CREATE, "bank:x", {"why": "test"})
            s.commit()
        for statement in (
            "UPDATE audit_event SET actor = 'someone else'",
            "DELETE FROM audit_event",
        ):
            with engine.connect() as conn, pytest.raises(DBAPIError, match="append-only"):
                conn.execute(text(statement))
        with Session(engine) as s:
            [event] = s.query(AuditEvent).all()
            assert (event.actor, event.action) == ("admin", "bank:create")
    finally:
        engine.dispose()


def test_ensure_schema_upgrades_only_sqlite(sqlite_url: str) -> None:
    ensure_schema(sqlite_url)
    assert current(sqlite_url) == heads()
