"""Tables of the store domain (SQLAlchemy 2 typed mappings).

Every timestamp is stored in UTC and read back timezone-aware. Entry values
are raw bytes: 32 for PDQ and SHA-256, 16 for MD5; a pdq-set or vpdq entry
keeps its members in ``entry_hash`` and, in ``value``, the SHA-256 of their
canonical form so that identical sets collapse like single hashes do.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from redress.store.db import Base
from redress.store.interfaces import JsonObject

# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL gets BIGINT.
BigId = BigInteger().with_variant(Integer(), "sqlite")


def utcnow() -> dt.datetime:
    """The current time, UTC, timezone-aware."""
    return dt.datetime.now(dt.UTC)


class UtcDateTime(TypeDecorator[dt.datetime]):
    """A timestamp stored as UTC and always returned timezone-aware."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        value = value.astimezone(dt.UTC)
        # SQLite has no time zones; keep naive UTC text there so ordering works.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        assert isinstance(value, dt.datetime)
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


class Bank(Base):
    """A named collection of signals to match against."""

    __tablename__ = "bank"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    purpose: Mapped[str] = mapped_column(String(32))
    pdq_threshold: Mapped[int] = mapped_column(SmallInteger)
    outcome_policy: Mapped[str | None] = mapped_column(String(100))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    disabled_until: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)


class BankEntry(Base):
    """One signal in a bank; removal is recorded (``removed_at``), never forgotten."""

    __tablename__ = "bank_entry"
    __table_args__ = (
        # (signal_type, value) leads so that the one index also serves exact lookups across banks.
        UniqueConstraint("signal_type", "value", "bank_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # No foreign key on purpose: PostgreSQL checks one per inserted row with a trigger,
    # which halves bulk-import speed. Banks are never deleted (only disabled) and the
    # store looks the bank up before inserting.
    bank_id: Mapped[int] = mapped_column(Integer)
    signal_type: Mapped[str] = mapped_column(String(16))
    value: Mapped[bytes] = mapped_column(LargeBinary)
    quality: Mapped[int | None] = mapped_column(SmallInteger)
    source: Mapped[str] = mapped_column(String(16))
    external_id: Mapped[str | None] = mapped_column(String(200))
    added_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    removed_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    note: Mapped[str | None] = mapped_column(Text)
    meta: Mapped[JsonObject] = mapped_column("metadata", JSON, default=dict)


class EntryHash(Base):
    """A member of a pdq-set entry or a frame of a vpdq entry."""

    __tablename__ = "entry_hash"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    entry_id: Mapped[int] = mapped_column(
        ForeignKey("bank_entry.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int] = mapped_column(Integer)
    value: Mapped[bytes] = mapped_column(LargeBinary)
    quality: Mapped[int] = mapped_column(SmallInteger)
    ts: Mapped[float | None] = mapped_column(Float)


class EntryFeature(Base):
    """Local features (ORB keypoints, not pixels) of a picture banked from a file the
    server held, for verifying near misses (docs/robustness.md, "Verification")."""

    __tablename__ = "entry_feature"

    entry_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("bank_entry.id", ondelete="CASCADE"), primary_key=True
    )
    kind: Mapped[str] = mapped_column(String(16))
    data: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)


class VictimCase(Base):
    """A victim's case: number, PIN (argon2 hash only), status and its entries."""

    __tablename__ = "victim_case"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_number: Mapped[str] = mapped_column(String(32), unique=True)
    pin_hash: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16))
    locale: Mapped[str] = mapped_column(String(16))
    contact: Mapped[str | None] = mapped_column(String(300))
    bank_id: Mapped[int] = mapped_column(ForeignKey("bank.id"))
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)


class CaseEntry(Base):
    """Which entries a case holds (one hash may belong to several cases)."""

    __tablename__ = "case_entry"

    case_id: Mapped[int] = mapped_column(
        ForeignKey("victim_case.id", ondelete="CASCADE"), primary_key=True
    )
    entry_id: Mapped[int] = mapped_column(
        ForeignKey("bank_entry.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class SeenItem(Base):
    """One distinct scanned item and its signals."""

    __tablename__ = "seen_item"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    item_key: Mapped[str] = mapped_column(String(80), unique=True)
    kind: Mapped[str] = mapped_column(String(8))
    sha256: Mapped[bytes | None] = mapped_column(LargeBinary, index=True)
    md5: Mapped[bytes | None] = mapped_column(LargeBinary, index=True)
    size: Mapped[int | None] = mapped_column(BigInteger)
    media_type: Mapped[str | None] = mapped_column(String(100))
    first_seen: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    last_seen: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)


class SeenHash(Base):
    """A PDQ hash of a seen item: its image hashes (``role`` pdq) or video frames (vpdq)."""

    __tablename__ = "seen_hash"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("seen_item.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(8))
    position: Mapped[int] = mapped_column(Integer)
    value: Mapped[bytes] = mapped_column(LargeBinary)
    quality: Mapped[int] = mapped_column(SmallInteger)
    ts: Mapped[float | None] = mapped_column(Float)


class Sighting(Base):
    """Where and when an item was seen."""

    __tablename__ = "sighting"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("seen_item.id", ondelete="CASCADE"), index=True)
    platform: Mapped[str | None] = mapped_column(String(50))
    chat: Mapped[str | None] = mapped_column(String(200))
    message_id: Mapped[str | None] = mapped_column(String(100))
    sender: Mapped[str | None] = mapped_column(String(200))
    seen_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)


class Match(Base):
    """An item matched an entry (recorded once per pair)."""

    __tablename__ = "match"
    __table_args__ = (UniqueConstraint("item_id", "entry_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("seen_item.id", ondelete="CASCADE"))
    entry_id: Mapped[int] = mapped_column(
        ForeignKey("bank_entry.id", ondelete="CASCADE"), index=True
    )
    signal_type: Mapped[str] = mapped_column(String(16))
    distance: Mapped[int] = mapped_column(SmallInteger)
    query_share: Mapped[float | None] = mapped_column(Float)
    retroactive: Mapped[bool] = mapped_column(Boolean, default=False)
    matched_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)


class AuditEvent(Base):
    """Append-only log of who did what to what (UPDATE/DELETE are refused by triggers)."""

    __tablename__ = "audit_event"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(64), index=True)
    target: Mapped[str] = mapped_column(String(200))
    details: Mapped[JsonObject] = mapped_column(JSON, default=dict)


class IndexChange(Base):
    """Monotonic log of entry add/remove and bank changes that index followers poll.

    An event names one entry (``entry_id``) or a run of consecutive entry IDs
    (``entry_id`` to ``entry_id_end``), so a bulk import logs a few rows, not
    one per entry. Followers reconcile the named IDs against current state.
    """

    __tablename__ = "index_change"

    seq: Mapped[int] = mapped_column(BigId, primary_key=True)
    op: Mapped[str] = mapped_column(String(8))
    entry_id: Mapped[int | None] = mapped_column(BigInteger)
    entry_id_end: Mapped[int | None] = mapped_column(BigInteger)
    bank_id: Mapped[int | None] = mapped_column(Integer)
    at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)


class ImportCheckpoint(Base):
    """Progress of one import of one file into one bank, committed with each chunk."""

    __tablename__ = "import_checkpoint"
    __table_args__ = (UniqueConstraint("bank_id", "file_digest", "format"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    bank_id: Mapped[int] = mapped_column(ForeignKey("bank.id", ondelete="CASCADE"))
    file_digest: Mapped[str] = mapped_column(String(64))
    format: Mapped[str] = mapped_column(String(16))
    position: Mapped[int] = mapped_column(BigInteger, default=0)
    status: Mapped[str] = mapped_column(String(8))
    counters: Mapped[JsonObject] = mapped_column(JSON, default=dict)
    started_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
