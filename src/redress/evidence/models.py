"""Tables of the evidence domain.

``evidence_ledger_entries``  one row per ledger entry: its canonical JSON bytes.
``evidence_ledger_nodes``    perfect-subtree hashes above the leaves.
``evidence_ledger_head``     one row: the log size and frontier; writers lock it.
``evidence_checkpoints``     signed checkpoints (+ RFC 3161 token when present).
``evidence_items``           captured items: hashes, lookup keys, the wrapped item
                             key and the encrypted capture record; the bytes live
                             encrypted in a blob file.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    BigInteger,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from redress.store.db import Base


class LedgerEntryRow(Base):
    """One append-only ledger entry."""

    __tablename__ = "evidence_ledger_entries"

    # INTEGER on SQLite makes seq the rowid itself: one b-tree less to write per append.
    seq: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=False
    )
    kind: Mapped[str] = mapped_column(String(100))
    item_id: Mapped[str | None] = mapped_column(String(32), index=True)
    actor: Mapped[str] = mapped_column(String(200))
    recorded_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    body: Mapped[bytes] = mapped_column(LargeBinary)
    leaf_hash: Mapped[bytes] = mapped_column(LargeBinary(32))


class LedgerNodeRow(Base):
    """Hash of the perfect subtree ``index`` at ``level`` >= 1 (2**level leaves).

    Level 0, the leaf hashes, lives in ``evidence_ledger_entries.leaf_hash``.
    """

    __tablename__ = "evidence_ledger_nodes"
    # Clustered on (level, index) on SQLite: no separate rowid tree to maintain.
    __table_args__ = {"sqlite_with_rowid": False}  # noqa: RUF012 - SQLAlchemy reads it once

    level: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    index: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    hash: Mapped[bytes] = mapped_column(LargeBinary(32))


class LedgerHeadRow(Base):
    """The single row every appender locks: size and frontier of the log."""

    __tablename__ = "evidence_ledger_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    size: Mapped[int] = mapped_column(BigInteger)
    frontier: Mapped[bytes] = mapped_column(LargeBinary)


class CheckpointRow(Base):
    """A signed checkpoint of the log at ``size``."""

    __tablename__ = "evidence_checkpoints"

    size: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    root: Mapped[bytes] = mapped_column(LargeBinary(32))
    note: Mapped[str] = mapped_column(Text)
    signed_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    timestamp_token: Mapped[bytes | None] = mapped_column(LargeBinary)
    tsa_chain_pem: Mapped[str | None] = mapped_column(Text)


class EvidenceItemRow(Base):
    """A captured item. Content and capture record are encrypted with the item key."""

    __tablename__ = "evidence_items"
    __table_args__ = (Index("ix_evidence_items_message", "platform", "chat_id", "message_id"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    capture_seq: Mapped[int] = mapped_column(BigInteger, unique=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    case_id: Mapped[str | None] = mapped_column(String(100), index=True)
    platform: Mapped[str | None] = mapped_column(String(50))
    chat_id: Mapped[str | None] = mapped_column(String(100))
    message_id: Mapped[str | None] = mapped_column(String(100))
    media_type: Mapped[str] = mapped_column(String(200))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    sha512: Mapped[str] = mapped_column(String(128))
    captured_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    connector: Mapped[str] = mapped_column(String(100))
    operator: Mapped[str] = mapped_column(String(200))
    trigger_kind: Mapped[str] = mapped_column(String(20))
    master_key_id: Mapped[str | None] = mapped_column(String(32))
    wrapped_key: Mapped[bytes | None] = mapped_column(LargeBinary)
    record_ciphertext: Mapped[bytes | None] = mapped_column(LargeBinary)
    blob_name: Mapped[str] = mapped_column(String(200))
    deleted_seq: Mapped[int | None] = mapped_column(BigInteger)
    deleted_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
