"""The Telegram tables' migration goes up and down on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect
from sqlalchemy.orm import Session

from redress.connectors.interfaces import ActionKind
from redress.connectors.telegram.store import GroupSettings, RecordKind, TelegramStore
from redress.store.db import make_engine
from redress.store.migrate import downgrade, upgrade

# Migrations are tested from an empty database, not the test run's migrated template.
pytestmark = pytest.mark.unmigrated

TABLES = {"telegram_group", "telegram_state", "telegram_processed", "telegram_record"}


def test_migration_up_use_and_down(database_url: str) -> None:
    upgrade(database_url)
    engine = make_engine(database_url)
    try:
        assert set(inspect(engine).get_table_names()) >= TABLES
        with Session(engine) as session, session.begin():
            store = TelegramStore(session)
            store.put_group(
                GroupSettings(
                    chat_id=-1001234567890123,
                    banks=("victims",),
                    outcomes=(ActionKind.DELETE_MESSAGE,),
                    language="zh",
                )
            )
            store.set_offset(123456, 9_000_000_001)
            store.mark_processed(-1001234567890123, 7, 0)
            store.record(RecordKind.ALERT, chat_id=-1001234567890123, detail={"code": "x"})
        with Session(engine) as session:
            store = TelegramStore(session)
            group = store.group(-1001234567890123)
            assert group.banks == ("victims",)
            assert group.outcomes == (ActionKind.DELETE_MESSAGE,)
            assert store.group(-5) == GroupSettings.default(-5)
            assert store.offset(123456) == 9_000_000_001
            assert store.is_processed(-1001234567890123, 7, 0)
            assert not store.is_processed(-1001234567890123, 7, 1)
            assert store.records([RecordKind.ALERT])[0].detail == {"code": "x"}
    finally:
        engine.dispose()
    downgrade(database_url, "e5d1c0a7b2f3")  # the revision before the Telegram tables
    engine = make_engine(database_url)
    try:
        assert not TABLES & set(inspect(engine).get_table_names())
    finally:
        engine.dispose()
