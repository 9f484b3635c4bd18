"""All SQL of the evidence domain. Stores only ``flush()``; the edge commits.

Appends are serialised by locking the single ``evidence_ledger_head`` row
(:meth:`SqlEvidenceStore.lock_head`): on PostgreSQL the row lock makes every
other appender wait until this transaction ends; on SQLite the UPDATE takes
the database write lock (waiting up to the busy timeout). Either way the
appender then reads the size and frontier that the previous writer
committed, so two writers can never take the same sequence number; the
primary key on ``seq`` is the backstop if that were ever bypassed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, cast

from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.orm import Session

from redress.evidence.errors import LedgerConflictError, LedgerCorruptError
from redress.evidence.interfaces import EvidenceItem, LedgerEntry
from redress.evidence.models import (
    CheckpointRow,
    EvidenceItemRow,
    LedgerEntryRow,
    LedgerHeadRow,
    LedgerNodeRow,
)

HEAD_ID = 1

_HEAD = cast(Table, LedgerHeadRow.__table__)
_READ_HEAD = select(_HEAD.c.size, _HEAD.c.frontier).where(_HEAD.c.id == HEAD_ID)
# The append path's statements, written for the driver; `:p` becomes its placeholder.
_LOCK_SQL = "UPDATE evidence_ledger_head SET size = size WHERE id = :p RETURNING size, frontier"
_INSERT_ENTRY_SQL = (
    "INSERT INTO evidence_ledger_entries (seq, kind, item_id, actor, recorded_at, body, leaf_hash) "
    "VALUES (:p, :p, :p, :p, :p, :p, :p)"
)
_INSERT_NODE_SQL = 'INSERT INTO evidence_ledger_nodes (level, "index", hash) VALUES (:p, :p, :p)'
_WRITE_HEAD_SQL = "UPDATE evidence_ledger_head SET size = :p, frontier = :p WHERE id = :p"


def _driver_sql(template: str, placeholder: str) -> str:
    return template.replace(":p", placeholder)


_NODES = cast(Table, LedgerNodeRow.__table__)
_ENTRIES = cast(Table, LedgerEntryRow.__table__)
_READ_LEAF = select(_ENTRIES.c.leaf_hash).where(_ENTRIES.c.seq == bindparam("seq"))
_READ_NODE = select(_NODES.c.hash).where(
    _NODES.c.level == bindparam("level"), _NODES.c.index == bindparam("index")
)


def _utc(value: dt.datetime) -> dt.datetime:
    # SQLite hands back naive datetimes even for timezone=True columns.
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _entry(row: LedgerEntryRow) -> LedgerEntry:
    return LedgerEntry(
        seq=row.seq,
        kind=row.kind,
        item_id=row.item_id,
        actor=row.actor,
        recorded_at=_utc(row.recorded_at),
        body=row.body,
        leaf_hash=row.leaf_hash,
    )


def item_from_row(row: EvidenceItemRow) -> EvidenceItem:
    """The public view of an item row."""
    return EvidenceItem(
        id=row.id,
        capture_seq=row.capture_seq,
        status=row.status,
        media_type=row.media_type,
        size=row.size,
        sha256=row.sha256,
        sha512=row.sha512,
        captured_at=_utc(row.captured_at),
        connector=row.connector,
        operator=row.operator,
        trigger_kind=row.trigger_kind,
        case_id=row.case_id,
        platform=row.platform,
        chat_id=row.chat_id,
        message_id=row.message_id,
        deleted_seq=row.deleted_seq,
    )


class SqlEvidenceStore:
    """Ledger, checkpoint and item persistence over one SQLAlchemy session."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._driver: tuple[str, Callable[[dt.datetime], Any]] | None = None

    # -- ledger ----------------------------------------------------------------------------------

    def _cursor(self) -> tuple[Any, str, Callable[[dt.datetime], Any]]:
        """The DB-API cursor of the session's connection, its placeholder and time adapter.

        The append path runs four statements per entry; through the driver
        directly they cost a fraction of what SQLAlchemy's execution machinery
        adds (see `redress bench evidence`). It is the same connection and
        transaction the session uses, so the edge still commits.
        """
        connection = self.session.connection()
        if self._driver is None:
            dialect = connection.dialect
            column = cast(Table, LedgerEntryRow.__table__).c.recorded_at
            processor = column.type.dialect_impl(dialect).bind_processor(dialect)
            self._driver = (
                "?" if dialect.paramstyle == "qmark" else "%s",
                processor or (lambda value: value),
            )
        cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        return cursor, self._driver[0], self._driver[1]

    def _is_integrity_error(self, exc: Exception) -> bool:
        dbapi = self.session.connection().dialect.dbapi
        return dbapi is not None and isinstance(exc, dbapi.IntegrityError)

    def lock_head(self) -> tuple[int, bytes]:
        """Take the appender lock and return the committed (size, frontier)."""
        cursor, p, _ = self._cursor()
        cursor.execute(_driver_sql(_LOCK_SQL, p), (HEAD_ID,))
        row = cursor.fetchone()
        cursor.close()
        if row is None:
            raise LedgerCorruptError("the ledger head row is missing; run the migrations")
        return int(row[0]), bytes(row[1])

    def read_snapshot(self) -> None:
        """Make the rest of this transaction read one snapshot of the store.

        Call it before any other statement of the transaction. An audit of a live
        ledger reads the head and then every entry; under PostgreSQL's default READ
        COMMITTED, or SQLite's reads outside a transaction, an entry appended in
        between shows up beyond the head it read, and a sound ledger fails.
        PostgreSQL: REPEATABLE READ; SQLite: an explicit (read) transaction.
        """
        if self.session.get_bind().dialect.name == "postgresql":
            # Applied when the session first takes its connection; if it already
            # has one, SQLAlchemy warns and the reads are not a snapshot.
            self.session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
            return
        connection = self.session.connection()
        driver = connection.connection.dbapi_connection
        if driver is not None and not getattr(driver, "in_transaction", True):
            connection.exec_driver_sql("BEGIN")

    def head(self) -> tuple[int, bytes]:
        """The current (size, frontier) without locking."""
        row = self.session.connection().execute(_READ_HEAD).one_or_none()
        if row is None:
            raise LedgerCorruptError("the ledger head row is missing; run the migrations")
        return int(row.size), bytes(row.frontier)

    def append_entries(
        self,
        entries: Sequence[LedgerEntry],
        nodes: Sequence[tuple[int, int, bytes]],
        size: int,
        frontier: bytes,
    ) -> None:
        """Write entries, their completed tree nodes and the new head (after :meth:`lock_head`)."""
        cursor, p, adapt = self._cursor()
        try:
            entry_rows = [
                (e.seq, e.kind, e.item_id, e.actor, adapt(e.recorded_at), e.body, e.leaf_hash)
                for e in entries
            ]
            insert_entry = _driver_sql(_INSERT_ENTRY_SQL, p)
            insert_node = _driver_sql(_INSERT_NODE_SQL, p)
            if len(entry_rows) == 1:
                cursor.execute(insert_entry, entry_rows[0])
            else:
                cursor.executemany(insert_entry, entry_rows)
            if len(nodes) == 1:
                cursor.execute(insert_node, nodes[0])
            elif nodes:
                cursor.executemany(insert_node, list(nodes))
            cursor.execute(_driver_sql(_WRITE_HEAD_SQL, p), (size, frontier, HEAD_ID))
        except Exception as exc:
            if not self._is_integrity_error(exc):
                raise
            raise LedgerConflictError(
                f"ledger sequence {entries[0].seq} was taken by another writer"
            ) from exc
        finally:
            cursor.close()

    def node(self, level: int, index: int) -> bytes:
        """Stored hash of perfect subtree ``index`` at ``level`` (level 0: a leaf hash)."""
        if level == 0:
            query, params = _READ_LEAF, {"seq": index}
        else:
            query, params = _READ_NODE, {"level": level, "index": index}
        value = self.session.connection().execute(query, params).scalar_one_or_none()
        if value is None:
            raise LedgerCorruptError(f"Merkle node level {level} index {index} is missing")
        return bytes(value)

    def entries(self, seqs: Iterable[int]) -> list[LedgerEntry]:
        """The entries with these sequence numbers, in order."""
        wanted = sorted(set(seqs))
        found: list[LedgerEntry] = []
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            rows = self.session.scalars(
                select(LedgerEntryRow).where(LedgerEntryRow.seq.in_(chunk))
            ).all()
            found.extend(_entry(r) for r in rows)
        found.sort(key=lambda e: e.seq)
        return found

    def iter_entries(self, batch: int = 2000) -> Iterator[LedgerEntry]:
        """Every entry in sequence order, read ``batch`` at a time (for an audit)."""
        after = -1
        while True:
            rows = self.session.scalars(
                select(LedgerEntryRow)
                .where(LedgerEntryRow.seq > after)
                .order_by(LedgerEntryRow.seq)
                .limit(batch)
            ).all()
            if not rows:
                return
            for row in rows:
                yield _entry(row)
            after = rows[-1].seq

    def iter_items(self, batch: int = 500) -> Iterator[EvidenceItemRow]:
        """Every item row in capture order, read ``batch`` at a time (for an audit)."""
        after = -1
        while True:
            rows = self.session.scalars(
                select(EvidenceItemRow)
                .where(EvidenceItemRow.capture_seq > after)
                .order_by(EvidenceItemRow.capture_seq)
                .limit(batch)
            ).all()
            if not rows:
                return
            yield from rows
            after = rows[-1].capture_seq

    def entries_for_item(self, item_id: str) -> list[LedgerEntry]:
        """Every entry about one item, oldest first (its chain of custody)."""
        rows = self.session.scalars(
            select(LedgerEntryRow)
            .where(LedgerEntryRow.item_id == item_id)
            .order_by(LedgerEntryRow.seq)
        ).all()
        return [_entry(r) for r in rows]

    # -- checkpoints -----------------------------------------------------------------------------

    def add_checkpoint(self, size: int, root: bytes, note: str, signed_at: dt.datetime) -> None:
        """Record a signed checkpoint (one per size; an existing one is kept)."""
        if self.session.get(CheckpointRow, size) is None:
            self.session.add(CheckpointRow(size=size, root=root, note=note, signed_at=signed_at))
            self.session.flush()

    def checkpoint(self, size: int) -> CheckpointRow | None:
        """The checkpoint at ``size``, if one was signed."""
        return self.session.get(CheckpointRow, size)

    def checkpoint_sizes(self) -> list[int]:
        """Sizes of every signed checkpoint, ascending."""
        return list(self.session.scalars(select(CheckpointRow.size).order_by(CheckpointRow.size)))

    def checkpoints_without_timestamp(self) -> list[CheckpointRow]:
        """Checkpoints still waiting for an RFC 3161 timestamp, oldest first."""
        return list(
            self.session.scalars(
                select(CheckpointRow)
                .where(CheckpointRow.timestamp_token.is_(None))
                .order_by(CheckpointRow.size)
            )
        )

    def set_timestamp(self, size: int, token: bytes, chain_pem: str) -> None:
        """Attach a timestamp token to the checkpoint at ``size``."""
        self.session.execute(
            update(CheckpointRow)
            .where(CheckpointRow.size == size)
            .values(timestamp_token=token, tsa_chain_pem=chain_pem)
        )

    # -- items -----------------------------------------------------------------------------------

    def add_item(self, row: EvidenceItemRow) -> None:
        """Insert a captured item."""
        self.session.add(row)
        self.session.flush()

    def item(self, item_id: str, *, for_update: bool = False) -> EvidenceItemRow | None:
        """One item row, optionally locked against concurrent key changes."""
        query = select(EvidenceItemRow).where(EvidenceItemRow.id == item_id)
        if for_update:
            query = query.with_for_update()
        return self.session.scalars(query).one_or_none()

    def item_ids_for_case(self, case_id: str) -> list[str]:
        """IDs of the items captured for a victim case, in capture order."""
        return list(
            self.session.scalars(
                select(EvidenceItemRow.id)
                .where(EvidenceItemRow.case_id == case_id)
                .order_by(EvidenceItemRow.capture_seq)
            )
        )

    def item_ids_for_message(self, platform: str, chat_id: str, message_id: str) -> list[str]:
        """IDs of items already captured from one platform message, in capture order."""
        return list(
            self.session.scalars(
                select(EvidenceItemRow.id)
                .where(
                    EvidenceItemRow.platform == platform,
                    EvidenceItemRow.chat_id == chat_id,
                    EvidenceItemRow.message_id == message_id,
                )
                .order_by(EvidenceItemRow.capture_seq)
            )
        )

    def items_wrapped_under_other_keys(self, current_key_id: str) -> list[EvidenceItemRow]:
        """Live items whose key is wrapped under a master key other than ``current_key_id``."""
        return list(
            self.session.scalars(
                select(EvidenceItemRow)
                .where(
                    EvidenceItemRow.wrapped_key.is_not(None),
                    EvidenceItemRow.master_key_id != current_key_id,
                )
                .order_by(EvidenceItemRow.capture_seq)
                .with_for_update()
            )
        )

    def flush(self) -> None:
        """Send pending changes to the database (the edge commits)."""
        self.session.flush()
