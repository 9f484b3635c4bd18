"""All SQL of the store domain.

Stores take a :class:`~sqlalchemy.orm.Session` and only ``flush()``; the edge
(CLI command, request, worker task, importer chunk) commits or rolls back.
Every entry add/remove and bank change also appends to ``index_change`` in
the same transaction, so in-memory indexes can follow the database.

On PostgreSQL, writes to ``index_change`` take a transaction-level advisory
lock first: sequence numbers then become visible in the order they were
handed out, and a follower polling ``seq > last`` can never skip one. Keep
transactions that change entries short (the importer commits per chunk).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import cast

import numpy as np
import numpy.typing as npt
from psycopg.errors import UniqueViolation
from sqlalchemy import Engine, Table, and_, bindparam, func, insert, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from redress.signals.types import PdqHash, SignalKind
from redress.store.db import Base
from redress.store.errors import (
    BankExistsError,
    BankNotFoundError,
    CaseNotFoundError,
)
from redress.store.interfaces import (
    AddResult,
    AuditAction,
    AuditRead,
    BankPurpose,
    BankRead,
    BankStats,
    CaseRead,
    CaseStatus,
    ChangeOp,
    EntryIn,
    EntryRead,
    EntrySource,
    JsonObject,
    MatchResult,
    MediaQuery,
    SightingIn,
)
from redress.store.models import (
    AuditEvent,
    Bank,
    BankEntry,
    CaseEntry,
    EntryFeature,
    EntryHash,
    IndexChange,
    Match,
    SeenHash,
    SeenItem,
    Sighting,
    VictimCase,
    utcnow,
)

# Any 64-bit constant: the advisory lock that orders index_change sequence numbers.
_CHANGE_LOG_LOCK = 0x7265647265737331
_SET_KINDS = (SignalKind.PDQ_SET, SignalKind.VPDQ)
# The kind of the stored local features (``redress.signals.verify``'s encoding, ORB).
FEATURES_KIND = "orb-v1"


def set_digest(kind: SignalKind, hashes: Sequence[bytes]) -> bytes:
    """The ``value`` of a pdq-set / vpdq entry: SHA-256 over its kind and members in order."""
    digest = hashlib.sha256(kind.value.encode())
    for member in hashes:
        digest.update(member)
    return digest.digest()


def _bank_read(row: Bank) -> BankRead:
    return BankRead(
        id=row.id,
        name=row.name,
        purpose=BankPurpose(row.purpose),
        pdq_threshold=row.pdq_threshold,
        outcome_policy=row.outcome_policy,
        enabled=row.enabled,
        disabled_until=row.disabled_until,
        created_at=row.created_at,
    )


def _entry_read(row: BankEntry) -> EntryRead:
    return EntryRead(
        id=row.id,
        bank_id=row.bank_id,
        kind=SignalKind(row.signal_type),
        value=row.value,
        quality=row.quality,
        source=EntrySource(row.source),
        external_id=row.external_id,
        added_at=row.added_at,
        removed_at=row.removed_at,
        note=row.note,
        metadata=dict(row.meta or {}),
    )


def _dialect_insert(session: Session) -> type[postgresql.Insert] | type[sqlite.Insert]:
    name = session.get_bind().dialect.name
    return postgresql.Insert if name == "postgresql" else sqlite.Insert


def _table(model: type[Base]) -> Table:
    """A model's table: Core statements on it skip the ORM's bulk-insert layer."""
    return cast(Table, model.__table__)


def id_runs(entry_ids: Iterable[int]) -> list[tuple[int, int]]:
    """Consecutive runs ``(first, last)`` covering the sorted, distinct IDs."""
    ids = np.unique(np.fromiter(entry_ids, dtype=np.int64))
    if not len(ids):
        return []
    # A run ends wherever the next ID is not one more than this one.
    breaks = np.flatnonzero(np.diff(ids) != 1)
    firsts = np.r_[ids[0], ids[breaks + 1]]
    lasts = np.r_[ids[breaks], ids[-1]]
    return list(zip(firsts.tolist(), lasts.tolist(), strict=True))


def log_changes(
    session: Session, op: ChangeOp, entry_ids: Sequence[int] = (), bank_id: int | None = None
) -> None:
    """Append change-log events (runs of entry IDs, or one bank event) to the open transaction."""
    if op is not ChangeOp.BANK and not entry_ids:
        return
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _CHANGE_LOG_LOCK})
    now = utcnow()
    if op is ChangeOp.BANK:
        session.execute(insert(IndexChange), [{"op": op.value, "bank_id": bank_id, "at": now}])
        return
    session.execute(
        insert(IndexChange),
        [
            {"op": op.value, "entry_id": a, "entry_id_end": b, "bank_id": bank_id, "at": now}
            for a, b in id_runs(entry_ids)
        ],
    )


class SqlBankStore:
    """:class:`~redress.store.interfaces.BankStore` on SQLAlchemy (SQLite and PostgreSQL)."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def create_bank(
        self,
        name: str,
        purpose: BankPurpose,
        pdq_threshold: int,
        outcome_policy: str | None = None,
    ) -> BankRead:
        """Create a bank; :class:`BankExistsError` if the name is taken."""
        if self.session.scalar(select(Bank.id).where(Bank.name == name)) is not None:
            raise BankExistsError(f"a bank called {name!r} already exists")
        row = Bank(
            name=name,
            purpose=purpose.value,
            pdq_threshold=pdq_threshold,
            outcome_policy=outcome_policy,
            enabled=True,
            created_at=utcnow(),
        )
        try:
            with self.session.begin_nested():
                self.session.add(row)
                self.session.flush()
        except IntegrityError as exc:
            raise BankExistsError(f"a bank called {name!r} already exists") from exc
        log_changes(self.session, ChangeOp.BANK, bank_id=row.id)
        return _bank_read(row)

    def get_bank(self, name: str) -> BankRead:
        """The bank called ``name``."""
        row = self.session.scalar(select(Bank).where(Bank.name == name))
        if row is None:
            raise BankNotFoundError(f"no bank called {name!r}")
        return _bank_read(row)

    def get_bank_by_id(self, bank_id: int) -> BankRead:
        """The bank with ``bank_id``."""
        row = self.session.get(Bank, bank_id)
        if row is None:
            raise BankNotFoundError(f"no bank with ID {bank_id}")
        return _bank_read(row)

    def list_banks(self) -> list[BankRead]:
        """Every bank, by name."""
        return [_bank_read(b) for b in self.session.scalars(select(Bank).order_by(Bank.name))]

    def update_bank(
        self,
        bank_id: int,
        *,
        enabled: bool | None = None,
        disabled_until: dt.datetime | None = None,
        clear_disabled_until: bool = False,
        pdq_threshold: int | None = None,
        outcome_policy: str | None = None,
    ) -> BankRead:
        """Change a bank's matching settings (followers pick it up from the change log)."""
        row = self.session.get(Bank, bank_id)
        if row is None:
            raise BankNotFoundError(f"no bank with ID {bank_id}")
        if enabled is not None:
            row.enabled = enabled
        if disabled_until is not None:
            row.disabled_until = disabled_until
        if clear_disabled_until:
            row.disabled_until = None
        if pdq_threshold is not None:
            row.pdq_threshold = pdq_threshold
        if outcome_policy is not None:
            row.outcome_policy = outcome_policy
        self.session.flush()
        log_changes(self.session, ChangeOp.BANK, bank_id=bank_id)
        return _bank_read(row)

    def add_entries(
        self, bank_id: int, entries: Sequence[EntryIn], source: EntrySource
    ) -> AddResult:
        """Add entries; identical entries (same kind and value) collapse, removed ones revive."""
        if not entries:
            return AddResult((), 0)
        now = utcnow()
        unique: dict[tuple[str, bytes], tuple[EntryIn, bytes]] = {}
        for entry in entries:
            members = _members(entry)
            value = set_digest(entry.kind, members) if entry.kind in _SET_KINDS else entry.value
            unique.setdefault((entry.kind.value, value), (entry, value))
        # Sets keep their members in child rows; only a freshly inserted set needs them.
        set_keys = [k for k in unique if k[0] in (SignalKind.PDQ_SET.value, SignalKind.VPDQ.value)]
        existing_sets: set[tuple[str, bytes]] = set()
        if set_keys:
            rows = self.session.execute(
                select(BankEntry.signal_type, BankEntry.value).where(
                    BankEntry.bank_id == bank_id,
                    BankEntry.value.in_([k[1] for k in set_keys]),
                )
            )
            existing_sets = {(r[0], r[1]) for r in rows}
        values = [
            {
                "bank_id": bank_id,
                "signal_type": kind,
                "value": value,
                "quality": entry.quality,
                "source": source.value,
                "external_id": entry.external_id,
                "added_at": now,
                "removed_at": None,
                "note": entry.note,
                "metadata": entry.metadata,
            }
            for (kind, value), (entry, _v) in unique.items()
        ]
        added: list[tuple[int, str, bytes]] = []
        dialect_insert = _dialect_insert(self.session)
        for start in range(0, len(values), 500):
            base = dialect_insert(BankEntry).values(values[start : start + 500])
            stmt = base.on_conflict_do_update(
                index_elements=["signal_type", "value", "bank_id"],
                set_={"removed_at": None, "added_at": base.excluded.added_at},
                where=BankEntry.removed_at.is_not(None),
            ).returning(BankEntry.id, BankEntry.signal_type, BankEntry.value)
            added.extend((r[0], r[1], r[2]) for r in self.session.execute(stmt))
        children = []
        for entry_id, kind, value in added:
            if (kind, value) in existing_sets or kind not in (
                SignalKind.PDQ_SET.value,
                SignalKind.VPDQ.value,
            ):
                continue
            entry, _v = unique[(kind, value)]
            children.extend(_child_rows(entry_id, entry))
        if children:
            self.session.execute(insert(EntryHash), children)
        features = [
            {"entry_id": entry_id, "kind": FEATURES_KIND, "data": entry.features, "created_at": now}
            for entry_id, kind, value in added
            if (entry := unique[(kind, value)][0]).features is not None
        ]
        if features:
            # A revived entry keeps the features it was first banked with.
            self.session.execute(
                dialect_insert(EntryFeature).values(features).on_conflict_do_nothing()
            )
        ids = tuple(sorted(r[0] for r in added))
        log_changes(self.session, ChangeOp.ADD, ids, bank_id)
        return AddResult(ids, len(entries) - len(ids))

    def remove_entries(self, entry_ids: Iterable[int]) -> list[int]:
        """Soft-remove entries; returns the IDs that were active."""
        ids = sorted({int(i) for i in entry_ids})
        removed: list[int] = []
        now = utcnow()
        for start in range(0, len(ids), 1000):
            stmt = (
                update(BankEntry)
                .where(BankEntry.id.in_(ids[start : start + 1000]), BankEntry.removed_at.is_(None))
                .values(removed_at=now)
                .returning(BankEntry.id)
            )
            removed.extend(self.session.scalars(stmt))
        removed.sort()
        log_changes(self.session, ChangeOp.REMOVE, removed)
        return removed

    def remove_values(self, bank_id: int, kind: SignalKind, values: Sequence[bytes]) -> list[int]:
        """Soft-remove the active entries of ``bank_id`` with these values (exchange deletions)."""
        ids: list[int] = []
        for start in range(0, len(values), 1000):
            ids.extend(
                self.session.scalars(
                    select(BankEntry.id).where(
                        BankEntry.bank_id == bank_id,
                        BankEntry.signal_type == kind.value,
                        BankEntry.value.in_(list(values[start : start + 1000])),
                        BankEntry.removed_at.is_(None),
                    )
                )
            )
        return self.remove_entries(ids)

    def entry_features(self, entry_ids: Sequence[int]) -> dict[int, bytes]:
        """The stored local features of those of ``entry_ids`` that have them."""
        found: dict[int, bytes] = {}
        ids = sorted(set(entry_ids))
        for start in range(0, len(ids), 1000):
            rows = self.session.execute(
                select(EntryFeature.entry_id, EntryFeature.data).where(
                    EntryFeature.entry_id.in_(ids[start : start + 1000]),
                    EntryFeature.kind == FEATURES_KIND,
                )
            )
            found.update((int(r[0]), bytes(r[1])) for r in rows)
        return found

    def get_entry(self, entry_id: int) -> EntryRead:
        """One entry by ID."""
        row = self.session.get(BankEntry, entry_id)
        if row is None:
            raise BankNotFoundError(f"no bank entry with ID {entry_id}")
        return _entry_read(row)

    def find_entries(self, bank_id: int, kind: SignalKind, value: bytes) -> list[EntryRead]:
        """Entries of ``bank_id`` with exactly this kind and value (active or removed)."""
        rows = self.session.scalars(
            select(BankEntry).where(
                BankEntry.bank_id == bank_id,
                BankEntry.signal_type == kind.value,
                BankEntry.value == value,
            )
        )
        return [_entry_read(r) for r in rows]

    def iter_entries(
        self, bank_id: int, *, include_removed: bool = False, chunk: int = 10_000
    ) -> Iterator[EntryRead]:
        """Stream a bank's entries in ID order, ``chunk`` rows per query."""
        last = 0
        while True:
            query = select(BankEntry).where(BankEntry.bank_id == bank_id, BankEntry.id > last)
            if not include_removed:
                query = query.where(BankEntry.removed_at.is_(None))
            rows = list(self.session.scalars(query.order_by(BankEntry.id).limit(chunk)))
            if not rows:
                return
            for row in rows:
                yield _entry_read(row)
            last = rows[-1].id
            self.session.expunge_all()

    def entry_hashes(self, entry_id: int) -> list[PdqHash]:
        """The member hashes of a pdq-set or the frames of a vpdq entry, in order."""
        rows = self.session.execute(
            select(EntryHash.value, EntryHash.quality)
            .where(EntryHash.entry_id == entry_id)
            .order_by(EntryHash.position)
        )
        return [PdqHash(r[0], r[1]) for r in rows]

    def entry_frames(self, entry_id: int) -> list[tuple[int, PdqHash, float]]:
        """A vpdq entry's frames as (frame number, hash, timestamp)."""
        rows = self.session.execute(
            select(EntryHash.position, EntryHash.value, EntryHash.quality, EntryHash.ts)
            .where(EntryHash.entry_id == entry_id)
            .order_by(EntryHash.position)
        )
        return [(r[0], PdqHash(r[1], r[2]), r[3] or 0.0) for r in rows]

    def stats(self, bank_id: int) -> BankStats:
        """Counts per signal type, removed entries and recorded matches."""
        bank = self.get_bank_by_id(bank_id)
        active = {
            r[0]: int(r[1])
            for r in self.session.execute(
                select(BankEntry.signal_type, func.count())
                .where(BankEntry.bank_id == bank_id, BankEntry.removed_at.is_(None))
                .group_by(BankEntry.signal_type)
            )
        }
        removed = self.session.scalar(
            select(func.count()).where(
                BankEntry.bank_id == bank_id, BankEntry.removed_at.is_not(None)
            )
        )
        matches = self.session.scalar(
            select(func.count())
            .select_from(Match)
            .join(BankEntry, BankEntry.id == Match.entry_id)
            .where(BankEntry.bank_id == bank_id)
        )
        return BankStats(bank, active, int(removed or 0), int(matches or 0))


def _members(entry: EntryIn) -> list[bytes]:
    if entry.kind is SignalKind.PDQ_SET:
        return [h.bits for h in entry.hashes]
    if entry.kind is SignalKind.VPDQ:
        return [f.frame.to_bytes(4, "big") + f.pdq.bits for f in entry.frames]
    return []


def _child_rows(entry_id: int, entry: EntryIn) -> list[dict[str, object]]:
    if entry.kind is SignalKind.PDQ_SET:
        return [
            {"entry_id": entry_id, "position": i, "value": h.bits, "quality": h.quality, "ts": None}
            for i, h in enumerate(entry.hashes)
        ]
    return [
        {
            "entry_id": entry_id,
            "position": f.frame,
            "value": f.pdq.bits,
            "quality": f.pdq.quality,
            "ts": f.ts,
        }
        for f in entry.frames
    ]


def _case_read(row: VictimCase, entry_ids: Sequence[int] = ()) -> CaseRead:
    return CaseRead(
        id=row.id,
        case_number=row.case_number,
        status=CaseStatus(row.status),
        locale=row.locale,
        contact=row.contact,
        bank_id=row.bank_id,
        created_at=row.created_at,
        updated_at=row.updated_at,
        entry_ids=tuple(entry_ids),
    )


class SqlCaseStore:
    """:class:`~redress.store.interfaces.CaseStore` on SQLAlchemy."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def _row(self, case_number: str) -> VictimCase:
        row = self.session.scalar(
            select(VictimCase).where(VictimCase.case_number == case_number.strip().upper())
        )
        if row is None:
            raise CaseNotFoundError(f"no case {case_number!r}")
        return row

    def create_case(
        self, case_number: str, pin_hash: str, bank_id: int, locale: str, contact: str | None
    ) -> CaseRead:
        """Insert a case in status Received."""
        now = utcnow()
        row = VictimCase(
            case_number=case_number,
            pin_hash=pin_hash,
            status=CaseStatus.RECEIVED.value,
            locale=locale,
            contact=contact,
            bank_id=bank_id,
            created_at=now,
            updated_at=now,
        )
        self.session.add(row)
        self.session.flush()
        return _case_read(row)

    def get_case(self, case_number: str) -> CaseRead:
        """The case with that number, with its entry IDs."""
        row = self._row(case_number)
        ids = self.session.scalars(
            select(CaseEntry.entry_id)
            .where(CaseEntry.case_id == row.id)
            .order_by(CaseEntry.entry_id)
        )
        return _case_read(row, list(ids))

    def pin_hash(self, case_number: str) -> str:
        """The stored argon2 hash of the case's PIN."""
        return self._row(case_number).pin_hash

    def set_status(self, case_id: int, status: CaseStatus) -> CaseRead:
        """Change status; Deleted also erases the contact details."""
        row = self.session.get(VictimCase, case_id)
        if row is None:
            raise CaseNotFoundError(f"no case with ID {case_id}")
        row.status = status.value
        row.updated_at = utcnow()
        if status is CaseStatus.DELETED:
            row.contact = None
        self.session.flush()
        return _case_read(row)

    def link_entries(self, case_id: int, entry_ids: Iterable[int]) -> None:
        """Record that these entries belong to the case (idempotent)."""
        ids = sorted({int(i) for i in entry_ids})
        if not ids:
            return
        stmt = _dialect_insert(self.session)(CaseEntry).values(
            [{"case_id": case_id, "entry_id": i} for i in ids]
        )
        self.session.execute(stmt.on_conflict_do_nothing())

    def orphaned_entries(self, case_id: int) -> list[int]:
        """Active entries of the case that no other open case still holds."""
        closed = [CaseStatus.WITHDRAWN.value, CaseStatus.DELETED.value]
        mine = select(CaseEntry.entry_id).where(CaseEntry.case_id == case_id)
        held_elsewhere = (
            select(CaseEntry.entry_id)
            .join(VictimCase, VictimCase.id == CaseEntry.case_id)
            .where(CaseEntry.case_id != case_id, VictimCase.status.not_in(closed))
        )
        rows = self.session.scalars(
            select(BankEntry.id).where(
                BankEntry.id.in_(mine),
                BankEntry.id.not_in(held_elsewhere),
                BankEntry.removed_at.is_(None),
            )
        )
        return sorted(rows)

    def cases_for_entries(self, entry_ids: Sequence[int]) -> dict[int, tuple[int, ...]]:
        """Case IDs per entry ID (entries in no case are absent)."""
        found: dict[int, list[int]] = {}
        if entry_ids:
            rows = self.session.execute(
                select(CaseEntry.entry_id, CaseEntry.case_id).where(
                    CaseEntry.entry_id.in_(list(entry_ids))
                )
            )
            for entry_id, case_id in rows:
                found.setdefault(entry_id, []).append(case_id)
        return {k: tuple(sorted(v)) for k, v in found.items()}


def item_key(query: MediaQuery) -> str:
    """How seen items are told apart: by SHA-256, else MD5, else their first PDQ hash."""
    if query.sha256:
        return "sha256:" + query.sha256.hex()
    if query.md5:
        return "md5:" + query.md5.hex()
    if query.pdq:
        return "pdq:" + query.pdq[0].hex
    if query.vpdq:
        return "vpdq:" + set_digest(SignalKind.VPDQ, [f.pdq.bits for f in query.vpdq]).hex()
    return "empty"


class SqlSeenStore:
    """:class:`~redress.store.interfaces.SeenStore` on SQLAlchemy."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def record_item(self, query: MediaQuery, sighting: SightingIn | None) -> int:
        """Insert (or find) the item for ``query``, add the sighting; returns the item ID."""
        return self.record_items([(query, sighting)])[0]

    def record_items(self, entries: Sequence[tuple[MediaQuery, SightingIn | None]]) -> list[int]:
        """:meth:`record_item` for a batch, in a few statements whatever its size.

        Returns the item IDs in order; a batch holding the same media twice records
        one item with two sightings. Safe against a concurrent writer of the same
        media: the insert skips keys that exist, and those are looked up.
        """
        if not entries:
            return []
        now = utcnow()
        keys = [item_key(query) for query, _ in entries]
        first: dict[str, MediaQuery] = {}
        for key, (query, _) in zip(keys, entries, strict=True):
            first.setdefault(key, query)
        ids: dict[str, int] = {}
        unique = list(first)
        # Chunks keep each statement under SQLite's bound-parameter limit.
        for start in range(0, len(unique), 500):
            rows = [
                {
                    "item_key": key,
                    "kind": first[key].kind,
                    "sha256": first[key].sha256,
                    "md5": first[key].md5,
                    "size": first[key].size,
                    "media_type": first[key].media_type,
                    "first_seen": now,
                    "last_seen": now,
                }
                for key in unique[start : start + 500]
            ]
            # Rows as parameters of one statement, not a VALUES list built into it: a
            # statement with its rows inside is compiled anew on every call (most of
            # recording one scanned item's CPU), this one once per process.
            stmt = (
                _dialect_insert(self.session)(_table(SeenItem))
                .on_conflict_do_nothing()
                .returning(SeenItem.item_key, SeenItem.id)
            )
            ids.update((key, int(item_id)) for key, item_id in self.session.execute(stmt, rows))
        created = set(ids)
        known = [key for key in unique if key not in created]
        for start in range(0, len(known), 500):
            chunk = known[start : start + 500]
            found = self.session.execute(
                select(SeenItem.item_key, SeenItem.id).where(SeenItem.item_key.in_(chunk))
            ).all()
            ids.update((key, int(item_id)) for key, item_id in found)
            self.session.execute(
                update(SeenItem)
                .where(SeenItem.id.in_([item_id for _, item_id in found]))
                .values(last_seen=now)
            )
        hashes: list[dict[str, object]] = []
        for key in unique:
            if key not in created:
                continue
            query = first[key]
            hashes.extend(
                {
                    "item_id": ids[key],
                    "role": "pdq",
                    "position": i,
                    "value": h.bits,
                    "quality": h.quality,
                    "ts": None,
                }
                for i, h in enumerate(query.pdq)
            )
            hashes.extend(
                {
                    "item_id": ids[key],
                    "role": role,
                    "position": f.frame,
                    "value": f.pdq.bits,
                    "quality": f.pdq.quality,
                    "ts": f.ts,
                }
                for role, frames in ((VPDQ_ROLE, query.vpdq), (TRIMMED_ROLE, query.vpdq_trimmed))
                for f in frames
            )
        if hashes:
            self.session.execute(insert(_table(SeenHash)), hashes)
        sightings = [
            {
                "item_id": ids[key],
                "platform": sighting.platform,
                "chat": sighting.chat,
                "message_id": sighting.message_id,
                "sender": sighting.sender,
                "seen_at": sighting.seen_at or now,
            }
            for key, (_, sighting) in zip(keys, entries, strict=True)
            if sighting is not None
        ]
        if sightings:
            self.session.execute(insert(_table(Sighting)), sightings)
        self.session.flush()
        return [ids[key] for key in keys]

    def record_matches(
        self, item_id: int, matches: Sequence[MatchResult], *, retroactive: bool = False
    ) -> int:
        """Record matches once per (item, entry); returns how many were new."""
        if not matches:
            return 0
        return self.record_many_matches([(item_id, m) for m in matches], retroactive=retroactive)

    def record_many_matches(
        self, matches: Sequence[tuple[int, MatchResult]], *, retroactive: bool = False
    ) -> int:
        """Record (item ID, match) pairs once per (item, entry) in a few bulk inserts;
        returns how many were new."""
        now = utcnow()
        recorded = 0
        # Rows as parameters (compiled once), as in record_items.
        stmt = (
            _dialect_insert(self.session)(_table(Match))
            .on_conflict_do_nothing()
            .returning(Match.id)
        )
        for start in range(0, len(matches), 2000):
            rows = [
                {
                    "item_id": item_id,
                    "entry_id": m.entry_id,
                    "signal_type": m.signal.value,
                    "distance": m.distance,
                    "query_share": m.query_share,
                    "retroactive": retroactive,
                    "matched_at": now,
                }
                for item_id, m in matches[start : start + 2000]
            ]
            if rows:
                recorded += len(self.session.execute(stmt, rows).all())
        return recorded

    def matches_for_item(self, item_id: int) -> list[MatchResult]:
        """The matches recorded for an item, nearest first."""
        rows = self.session.execute(
            select(Match, BankEntry.bank_id, Bank.name, Bank.purpose)
            .join(BankEntry, BankEntry.id == Match.entry_id)
            .join(Bank, Bank.id == BankEntry.bank_id)
            .where(Match.item_id == item_id)
        ).all()
        cases = SqlCaseStore(self.session).cases_for_entries([r[0].entry_id for r in rows])
        results = [
            MatchResult(
                distance=match.distance,
                bank_id=bank_id,
                bank_name=bank_name,
                bank_purpose=BankPurpose(purpose),
                entry_id=match.entry_id,
                signal=SignalKind(match.signal_type),
                case_ids=cases.get(match.entry_id, ()),
                query_share=match.query_share,
            )
            for match, bank_id, bank_name, purpose in rows
        ]
        return sorted(results)

    def item_ids_by_digest(self, column: str, values: Sequence[bytes]) -> dict[bytes, list[int]]:
        """Seen items whose ``md5`` or ``sha256`` is among ``values``."""
        col = SeenItem.md5 if column == "md5" else SeenItem.sha256
        found: dict[bytes, list[int]] = {}
        for start in range(0, len(values), 1000):
            for value, item_id in self.session.execute(
                select(col, SeenItem.id).where(col.in_(list(values[start : start + 1000])))
            ):
                assert value is not None
                found.setdefault(value, []).append(item_id)
        return found


class SqlAuditLog:
    """The append-only audit log."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def append(
        self, actor: str, action: AuditAction, target: str, details: JsonObject | None = None
    ) -> None:
        """Record one event."""
        self.session.add(
            AuditEvent(
                at=utcnow(), actor=actor, action=action.value, target=target, details=details or {}
            )
        )
        self.session.flush()

    def events(self, *, target: str | None = None, limit: int = 100) -> list[AuditRead]:
        """Newest events first, optionally for one target."""
        query = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit)
        if target is not None:
            query = query.where(AuditEvent.target == target)
        return [
            AuditRead(e.id, e.at, e.actor, AuditAction(e.action), e.target, dict(e.details))
            for e in self.session.scalars(query)
        ]


@dataclass(frozen=True, slots=True)
class Change:
    """One row of the index change log: an op on entries ``entry_id..entry_id_end``."""

    seq: int
    op: ChangeOp
    entry_id: int | None
    entry_id_end: int | None
    bank_id: int | None

    @property
    def run(self) -> tuple[int, int] | None:
        """The inclusive run of entry IDs this event names (None for bank events)."""
        if self.entry_id is None:
            return None
        return (self.entry_id, self.entry_id_end or self.entry_id)


def read_changes(session: Session, after: int, limit: int = 100_000) -> list[Change]:
    """Change-log events with ``seq > after``, oldest first."""
    rows = session.execute(
        select(
            IndexChange.seq,
            IndexChange.op,
            IndexChange.entry_id,
            IndexChange.entry_id_end,
            IndexChange.bank_id,
        )
        .where(IndexChange.seq > after)
        .order_by(IndexChange.seq)
        .limit(limit)
    )
    return [Change(r[0], ChangeOp(r[1]), r[2], r[3], r[4]) for r in rows]


def last_change(session: Session) -> int:
    """The newest sequence number in the change log (0 when empty)."""
    return int(session.scalar(select(func.coalesce(func.max(IndexChange.seq), 0))) or 0)


# --- bulk paths used by the importer, the cold start and the benchmark -------------------


@dataclass(frozen=True, slots=True)
class HashBlock:
    """A block of PDQ hashes for an index: owner IDs, their bank IDs, ``(n, 32)`` hashes."""

    ids: npt.NDArray[np.int64]
    bank_ids: npt.NDArray[np.int32]
    hashes: npt.NDArray[np.uint8]


# The cold start reads blocks of entry IDs, each as ONE row of concatenated columns built
# by the database (string_agg / group_concat): a few hundred rows for ten million hashes
# instead of ten million, so the client does no per-row work at all.
_PG_BLOCK = """
SELECT string_agg(int8send(e.id), ''::bytea), string_agg(int4send(e.bank_id), ''::bytea),
       string_agg({value}, ''::bytea)
  FROM {source}
 WHERE (e.signal_type || '') = %(kind)s AND e.removed_at IS NULL AND length({value}) = 32
   AND {idcol} BETWEEN %(first)s AND %(last)s {extra}
"""
_SQLITE_BLOCK = """
SELECT group_concat(e.id, ','), group_concat(e.bank_id, ','), group_concat(hex({value}), '')
  FROM {source}
 WHERE (e.signal_type || '') = :kind AND e.removed_at IS NULL AND length({value}) = 32
   AND {idcol} BETWEEN :first AND :last {extra}
"""
# ``(signal_type || '')`` keeps planners off the (signal_type, value) index: with it SQLite
# scanned every PDQ entry once per block, making the cold start quadratic.
# Sets and frames are driven from entry_hash (usually small) through its entry_id index.
_SOURCES = {
    "pdq": ("bank_entry e", "e.value", "e.id", ""),
    "pdq-set": (
        "entry_hash h JOIN bank_entry e ON e.id = h.entry_id",
        "h.value",
        "h.entry_id",
        "",
    ),
    "vpdq": (
        "entry_hash h JOIN bank_entry e ON e.id = h.entry_id",
        "h.value",
        "h.entry_id",
        "AND h.quality >= {quality}",
    ),
}


def stream_active_hashes(
    engine: Engine,
    *,
    frames: bool = False,
    entry_ids: Sequence[int] | None = None,
    quality_min: int = 50,
    block: int = 500_000,
) -> Iterator[HashBlock]:
    """Stream the PDQ hashes of active entries (pdq and pdq-set), or vPDQ frames, as NumPy blocks.

    ``entry_ids`` limits it to some entries (used when following the change log).
    """
    runs: list[tuple[int, int]]
    if entry_ids is not None:
        if not entry_ids:
            return
        runs = id_runs(entry_ids)
    else:
        with engine.connect() as conn:
            bounds = conn.execute(select(func.min(BankEntry.id), func.max(BankEntry.id))).one()
        low: int | None = bounds[0]
        high: int | None = bounds[1]
        if low is None or high is None:
            return
        runs = [(first, min(first + block - 1, high)) for first in range(low, high + 1, block)]
    kinds = ["vpdq"] if frames else ["pdq", "pdq-set"]
    raw = engine.raw_connection()
    try:
        cursor = raw.driver_connection.cursor()  # type: ignore[union-attr]
        postgres = engine.dialect.name == "postgresql"
        for kind in kinds:
            source, value, idcol, extra_kind = _SOURCES[kind]
            extra = extra_kind.format(quality=int(quality_min))
            # A follower names scattered IDs: one query, its runs OR-ed together.
            if entry_ids is not None:
                extra += " AND ({})".format(
                    " OR ".join(f"{idcol} BETWEEN {int(a)} AND {int(b)}" for a, b in runs)
                )
                spans = [(runs[0][0], runs[-1][1])]
            else:
                spans = runs
            sql = (_PG_BLOCK if postgres else _SQLITE_BLOCK).format(
                source=source, value=value, idcol=idcol, extra=extra
            )
            for first, last in spans:
                params = {"kind": kind, "first": first, "last": last}
                if postgres:
                    cursor.execute(sql, params, binary=True)
                else:
                    cursor.execute(sql, params)
                ids, banks, values = cursor.fetchone()
                if ids is None:
                    continue
                if postgres:
                    got = HashBlock(
                        np.frombuffer(ids, dtype=">i8").astype(np.int64),
                        np.frombuffer(banks, dtype=">i4").astype(np.int32),
                        np.frombuffer(values, dtype=np.uint8).reshape(-1, 32),
                    )
                else:
                    got = HashBlock(
                        np.array(ids.split(","), dtype=np.int64),
                        np.array(banks.split(","), dtype=np.int32),
                        np.frombuffer(bytes.fromhex(values), dtype=np.uint8).reshape(-1, 32),
                    )
                yield got
        raw.commit()
    finally:
        raw.close()


# ``seen_hash.role``: an image's hashes, a video's frames as posted, and the same frames
# without the video's letterbox bars (a second reading, docs/robustness.md "Video").
PDQ_ROLE = "pdq"
VPDQ_ROLE = "vpdq"
TRIMMED_ROLE = "vpdq-t"


@dataclass(frozen=True, slots=True)
class SeenBlock:
    """Rows of ``seen_hash`` as arrays: row IDs, item IDs, frame flags (any video frame),
    trimmed flags (a frame without the letterbox bars), qualities, hashes."""

    ids: npt.NDArray[np.int64]
    item_ids: npt.NDArray[np.int64]
    frames: npt.NDArray[np.bool_]
    trimmed: npt.NDArray[np.bool_]
    qualities: npt.NDArray[np.int16]
    hashes: npt.NDArray[np.uint8]


# Like the cold start: one row of concatenated columns per block of row IDs, built by the
# database, so that a million seen hashes cost a few queries and no Python object per row.
_PG_SEEN_BLOCK = """
SELECT string_agg(int8send(id), ''::bytea), string_agg(int8send(item_id), ''::bytea),
       string_agg(int2send((role <> 'pdq')::int::int2), ''::bytea),
       string_agg(int2send((role = 'vpdq-t')::int::int2), ''::bytea),
       string_agg(int2send(quality), ''::bytea), string_agg(value, ''::bytea)
  FROM seen_hash WHERE id BETWEEN %(first)s AND %(last)s AND length(value) = 32
"""
_SQLITE_SEEN_BLOCK = """
SELECT group_concat(id, ','), group_concat(item_id, ','),
       group_concat(CASE WHEN role = 'pdq' THEN 0 ELSE 1 END, ','),
       group_concat(CASE WHEN role = 'vpdq-t' THEN 1 ELSE 0 END, ','),
       group_concat(quality, ','), group_concat(hex(value), '')
  FROM seen_hash WHERE id BETWEEN :first AND :last AND length(value) = 32
"""


def stream_seen_hashes(
    engine: Engine, runs: Sequence[tuple[int, int]], *, block: int = 500_000
) -> Iterator[SeenBlock]:
    """Stream the ``seen_hash`` rows whose IDs fall in ``runs`` as NumPy blocks."""
    spans = [
        (first, min(first + block - 1, last))
        for run_first, last in runs
        for first in range(run_first, last + 1, block)
    ]
    if not spans:
        return
    raw = engine.raw_connection()
    try:
        cursor = raw.driver_connection.cursor()  # type: ignore[union-attr]
        postgres = engine.dialect.name == "postgresql"
        for first, last in spans:
            params = {"first": first, "last": last}
            if postgres:
                cursor.execute(_PG_SEEN_BLOCK, params, binary=True)
            else:
                cursor.execute(_SQLITE_SEEN_BLOCK, params)
            ids, items, frames, trimmed, qualities, values = cursor.fetchone()
            if ids is None:
                continue
            if postgres:
                yield SeenBlock(
                    np.frombuffer(ids, dtype=">i8").astype(np.int64),
                    np.frombuffer(items, dtype=">i8").astype(np.int64),
                    np.frombuffer(frames, dtype=">i2").astype(np.bool_),
                    np.frombuffer(trimmed, dtype=">i2").astype(np.bool_),
                    np.frombuffer(qualities, dtype=">i2").astype(np.int16),
                    np.frombuffer(values, dtype=np.uint8).reshape(-1, 32),
                )
            else:
                yield SeenBlock(
                    np.array(ids.split(","), dtype=np.int64),
                    np.array(items.split(","), dtype=np.int64),
                    np.array(frames.split(","), dtype=np.int8).astype(np.bool_),
                    np.array(trimmed.split(","), dtype=np.int8).astype(np.bool_),
                    np.array(qualities.split(","), dtype=np.int16),
                    np.frombuffer(bytes.fromhex(values), dtype=np.uint8).reshape(-1, 32),
                )
        raw.commit()
    finally:
        raw.close()


def last_seen_hash(engine: Engine) -> int:
    """The highest ``seen_hash`` row ID (0 when there is none)."""
    with engine.connect() as conn:
        return int(conn.execute(select(func.coalesce(func.max(SeenHash.id), 0))).scalar_one())


# The fast path: a plain INSERT, in value order so that the unique index is walked once per
# chunk. It costs PostgreSQL about a third less CPU than ON CONFLICT's speculative insertion,
# and the unique index still refuses a value that is already there (or that a concurrent
# importer holds uncommitted), which sends the chunk to the upsert below.
_PG_INSERT = """
WITH added AS (
  INSERT INTO bank_entry (bank_id, signal_type, value, quality, source, external_id,
                          added_at, removed_at, note, metadata)
  SELECT %(bank)s, %(kind)s, value, quality, %(source)s, external_id, %(now)s,
         NULL, NULL, COALESCE(metadata, '{}'::json)
    FROM entry_staging ORDER BY value
  RETURNING id)
SELECT string_agg(int8send(id), ''::bytea ORDER BY id) FROM added
"""
_PG_UPSERT = """
WITH added AS (
  INSERT INTO bank_entry (bank_id, signal_type, value, quality, source, external_id,
                          added_at, removed_at, note, metadata)
  SELECT %(bank)s, %(kind)s, value, quality, %(source)s, external_id, %(now)s,
         NULL, NULL, COALESCE(metadata, '{}'::json)
    FROM entry_staging ORDER BY value
  ON CONFLICT (signal_type, value, bank_id) DO UPDATE
     SET removed_at = NULL, added_at = excluded.added_at
   WHERE bank_entry.removed_at IS NOT NULL
  RETURNING id)
SELECT string_agg(int8send(id), ''::bytea ORDER BY id) FROM added
"""
# SQLite needs ``WHERE true`` so that ON CONFLICT is not read as a join constraint.
_SQLITE_UPSERT = """
INSERT INTO bank_entry (bank_id, signal_type, value, quality, source, external_id,
                        added_at, removed_at, note, metadata)
SELECT :bank, :kind, value, quality, :source, external_id, :now, NULL, NULL,
       COALESCE(metadata, '{}')
  FROM entry_staging WHERE true GROUP BY value
ON CONFLICT (signal_type, value, bank_id) DO UPDATE
   SET removed_at = NULL, added_at = excluded.added_at
 WHERE bank_entry.removed_at IS NOT NULL
RETURNING id
"""


@dataclass(frozen=True, slots=True)
class HashRows:
    """Single-hash entries to bulk-load, as columns: one position per entry.

    ``hex_values`` are the hashes as lowercase hex, all distinct (the importer
    collapses duplicates before it gets here); ``metadata_json`` holds each
    row's metadata already encoded as a JSON object, ``None`` for none.
    Columns rather than row objects: an import moves millions of them.
    """

    hex_values: Sequence[str]
    qualities: Sequence[int | None] | None
    external_ids: Sequence[str | None]
    metadata_json: Sequence[str | None]

    def __len__(self) -> int:
        return len(self.hex_values)


@dataclass(frozen=True, slots=True)
class UpsertResult:
    """What :func:`bulk_upsert_rows` did: the IDs newly active, and whether it had to upsert."""

    ids: list[int]
    upserted: bool


def _copy_column(values: Sequence[str | None]) -> list[str]:
    """A text column for ``COPY ... FROM STDIN``: NULL as ``\\N``, specials escaped."""
    present = [v for v in values if v is not None]
    joined = "".join(present)
    if any(c in joined for c in "\\\t\n\r"):
        return ["\\N" if v is None else _copy_text(v) for v in values]
    return ["\\N" if v is None else v for v in values]


def bulk_upsert_rows(
    session: Session,
    bank_id: int,
    kind: SignalKind,
    rows: HashRows,
    source: EntrySource,
    *,
    optimistic: bool = True,
    log: bool = True,
) -> UpsertResult:
    """Insert single-hash entries fast; returns the IDs of those newly active.

    Rows go to a temporary staging table (``COPY`` on PostgreSQL,
    ``executemany`` on SQLite) and move into ``bank_entry`` in one statement.
    On PostgreSQL, with ``optimistic``, that is a plain ``INSERT`` inside a
    savepoint; if any value is already in the bank (or being added by a
    concurrent importer: the unique index makes us wait for its commit) the
    savepoint is rolled back and an ``INSERT ... ON CONFLICT`` runs instead.
    Either way duplicates collapse, removed entries revive, and no entry is
    inserted twice. The change log gets ``add`` events for runs of the new
    IDs in the same transaction; pass ``log=False`` to log them yourself with
    :func:`log_changes` once every insert of the transaction is done (the
    change-log lock must be taken last, or two importers can deadlock).
    """
    if not len(rows):
        return UpsertResult([], False)
    now = utcnow()
    conn = session.connection()
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    params = {"bank": bank_id, "kind": kind.value, "source": source.value}
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(
            "CREATE TEMP TABLE IF NOT EXISTS entry_staging (value bytea, quality smallint, "
            "external_id text, metadata json) ON COMMIT DELETE ROWS"
        )
        conn.exec_driver_sql("TRUNCATE entry_staging")
        # Enough memory to sort a chunk without spilling to disk.
        conn.exec_driver_sql("SET LOCAL work_mem = '64MB'")
        qualities = (
            ["\\N"] * len(rows)
            if rows.qualities is None
            else ["\\N" if q is None else str(q) for q in rows.qualities]
        )
        external = _copy_column(rows.external_ids)
        metas = _copy_column(rows.metadata_json)
        text_rows = "".join(
            [
                f"\\\\x{h}\t{q}\t{e}\t{m}\n"
                for h, q, e, m in zip(rows.hex_values, qualities, external, metas, strict=True)
            ]
        )
        with cursor.copy(
            "COPY entry_staging (value, quality, external_id, metadata) FROM STDIN"
        ) as copy:
            copy.write(text_rows)
        del text_rows
        values = {**params, "now": now}
        packed: bytes | None = None
        upserted = not optimistic
        if optimistic:
            cursor.execute("SAVEPOINT redress_bulk_insert")
            try:
                cursor.execute(_PG_INSERT, values)
            except UniqueViolation:
                cursor.execute("ROLLBACK TO SAVEPOINT redress_bulk_insert")
                upserted = True
            else:
                packed = cursor.fetchone()[0]
                cursor.execute("RELEASE SAVEPOINT redress_bulk_insert")
        if upserted:
            cursor.execute(_PG_UPSERT, values)
            packed = cursor.fetchone()[0]
        ids: list[int] = (
            [] if packed is None else np.frombuffer(packed, dtype=">i8").astype(np.int64).tolist()
        )
        # The change log last, just before commit: concurrent importers run their inserts in
        # parallel and queue only for the advisory lock that orders sequence numbers.
        if log:
            log_changes(session, ChangeOp.ADD, ids, bank_id)
        return UpsertResult(ids, upserted)
    conn.exec_driver_sql(
        "CREATE TEMP TABLE IF NOT EXISTS entry_staging (value BLOB, quality INTEGER, "
        "external_id TEXT, metadata TEXT)"
    )
    conn.exec_driver_sql("DELETE FROM entry_staging")
    cursor.executemany(
        "INSERT INTO entry_staging VALUES (?, ?, ?, ?)",
        zip(
            map(bytes.fromhex, rows.hex_values),
            rows.qualities if rows.qualities is not None else [None] * len(rows),
            rows.external_ids,
            rows.metadata_json,
            strict=True,
        ),
    )
    stamp = now.replace(tzinfo=None).isoformat(sep=" ")
    sqlite_ids = sorted(
        int(r[0]) for r in session.execute(text(_SQLITE_UPSERT), {**params, "now": stamp})
    )
    if log:
        cursor.executemany(
            "INSERT INTO index_change (op, entry_id, entry_id_end, bank_id, at) "
            "VALUES ('add', ?, ?, ?, ?)",
            [(a, b, bank_id, stamp) for a, b in id_runs(sqlite_ids)],
        )
    return UpsertResult(sqlite_ids, True)


def bulk_upsert_hashes(
    session: Session,
    bank_id: int,
    kind: SignalKind,
    values: Sequence[bytes],
    qualities: Sequence[int | None],
    external_ids: Sequence[str | None],
    source: EntrySource,
    metadata_json: Sequence[str | None] | None = None,
) -> list[int]:
    """:func:`bulk_upsert_rows` for raw hash bytes (duplicates allowed: the first one wins)."""
    metas: Sequence[str | None] = metadata_json or [None] * len(values)
    first: dict[bytes, int] = {}
    for i, value in enumerate(values):
        first.setdefault(value, i)
    keep = list(first.values())
    rows = HashRows(
        [values[i].hex() for i in keep],
        [qualities[i] for i in keep],
        [external_ids[i] for i in keep],
        [metas[i] for i in keep],
    )
    return bulk_upsert_rows(session, bank_id, kind, rows, source).ids


def _copy_text(value: str) -> str:
    return (
        value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    )


def active_entry_state(
    session: Session, entry_ids: Sequence[int] = (), runs: Sequence[tuple[int, int]] = ()
) -> dict[int, tuple[int, str, bool]]:
    """For each entry among ``entry_ids`` and ID ``runs``: (bank ID, signal type, active?)."""
    found: dict[int, tuple[int, str, bool]] = {}
    query = select(BankEntry.id, BankEntry.bank_id, BankEntry.signal_type, BankEntry.removed_at)
    ids = list(entry_ids)
    for start in range(0, len(ids), 1000):
        for entry_id, bank_id, kind, removed in session.execute(
            query.where(BankEntry.id.in_(ids[start : start + 1000]))
        ):
            found[entry_id] = (bank_id, kind, removed is None)
    for first, last in runs:
        for entry_id, bank_id, kind, removed in session.execute(
            query.where(BankEntry.id.between(first, last))
        ):
            found[entry_id] = (bank_id, kind, removed is None)
    return found


def exact_matches(session: Session, kind: SignalKind, value: bytes) -> list[tuple[int, int]]:
    """Active entries with exactly this md5/sha256 value: (entry ID, bank ID)."""
    rows = session.execute(
        select(BankEntry.id, BankEntry.bank_id).where(
            and_(
                BankEntry.signal_type == kind.value,
                BankEntry.value == value,
                BankEntry.removed_at.is_(None),
            )
        )
    )
    return [(r[0], r[1]) for r in rows]


_ENTRY_TABLE = _table(BankEntry)
# Built once: every scanned item runs it (md5 and sha256), and building a statement
# costs more than running this one.
_EXACT_ENTRIES = select(_ENTRY_TABLE.c.value, _ENTRY_TABLE.c.id, _ENTRY_TABLE.c.bank_id).where(
    _ENTRY_TABLE.c.signal_type == bindparam("kind"),
    _ENTRY_TABLE.c.value.in_(bindparam("values", expanding=True)),
    _ENTRY_TABLE.c.removed_at.is_(None),
)


def exact_matches_many(
    session: Session, kind: SignalKind, values: Collection[bytes]
) -> dict[bytes, list[tuple[int, int]]]:
    """Active entries with any of these md5/sha256 values: (entry ID, bank ID) by value."""
    found: dict[bytes, list[tuple[int, int]]] = {}
    wanted = list(values)
    for start in range(0, len(wanted), 1000):
        rows = session.execute(
            _EXACT_ENTRIES, {"kind": kind.value, "values": wanted[start : start + 1000]}
        )
        for value, entry_id, bank_id in rows:
            found.setdefault(bytes(value), []).append((entry_id, bank_id))
    return found
