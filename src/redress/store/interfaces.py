"""The store domain's vocabulary and the Protocols other domains program against.

Values cross the boundary as frozen dataclasses (``BankRead``, ``MatchResult``,
...), never ORM rows or dicts. ``BankStore``, ``CaseStore`` and ``SeenStore``
are the plug-in points; ``redress.store.store`` has the SQL implementations
and ``tests/store/test_interfaces.py`` the conformance suites.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from redress.signals.robust import DerivedHash
from redress.signals.types import PdqHash, SignalKind
from redress.signals.verify import ScannedPicture

JsonValue = str | int | float | bool | None | list["JsonValue"] | dict[str, "JsonValue"]
JsonObject = dict[str, JsonValue]


class BankPurpose(enum.StrEnum):
    """Why a bank exists; the pipeline's policies key on it."""

    VICTIM_CASES = "victim_cases"
    CONFIRMED_VIOLATIONS = "confirmed_violations"
    EXTERNAL_EXCHANGE = "external_exchange"
    INTERNAL = "internal"


class EntrySource(enum.StrEnum):
    """Where a bank entry came from."""

    CASE = "case"
    EXCHANGE = "exchange"
    MODERATOR = "moderator"
    IMPORT = "import"


class CaseStatus(enum.StrEnum):
    """A victim case's status, spelled as StopNCII spells it."""

    RECEIVED = "Received"
    ACTIVE = "Active"
    WITHDRAWN = "Withdrawn"
    DELETED = "Deleted"

    @property
    def closed(self) -> bool:
        """Withdrawn and Deleted cases no longer match anything."""
        return self in (CaseStatus.WITHDRAWN, CaseStatus.DELETED)


class AuditAction(enum.StrEnum):
    """Audit log tags, shaped ``noun:verb[:detail]``."""

    BANK_CREATE = "bank:create"
    BANK_UPDATE = "bank:update"
    BANK_ENTRY_ADD = "bank:entry:add"
    BANK_ENTRY_REMOVE = "bank:entry:remove"
    BANK_IMPORT = "bank:import"
    BANK_EXPORT = "bank:export"
    CASE_CREATE = "case:create"
    CASE_STATUS_RECEIVED = "case:status:received"
    CASE_STATUS_ACTIVE = "case:status:active"
    CASE_STATUS_WITHDRAWN = "case:status:withdrawn"
    CASE_STATUS_DELETED = "case:status:deleted"
    CASE_PIN_FAILED = "case:pin:failed"
    MATCH_RETROACTIVE = "match:retroactive"

    @classmethod
    def for_status(cls, status: CaseStatus) -> AuditAction:
        """The tag recorded when a case moves to ``status``."""
        return cls(f"case:status:{status.value.lower()}")


class ChangeOp(enum.StrEnum):
    """Events in the index change log."""

    ADD = "add"
    REMOVE = "remove"
    BANK = "bank"


@dataclass(frozen=True, slots=True)
class BankRead:
    """A bank as other domains see it."""

    id: int
    name: str
    purpose: BankPurpose
    pdq_threshold: int
    outcome_policy: str | None
    enabled: bool
    disabled_until: dt.datetime | None
    created_at: dt.datetime

    def matching_at(self, now: dt.datetime) -> bool:
        """True when the bank takes part in matching at ``now``."""
        return self.enabled and (self.disabled_until is None or self.disabled_until <= now)


@dataclass(frozen=True, slots=True)
class VpdqFrameIn:
    """One vPDQ frame hash: frame number, PDQ (with quality), timestamp in seconds."""

    frame: int
    pdq: PdqHash
    ts: float


@dataclass(frozen=True, slots=True)
class EntryIn:
    """A signal to put in a bank.

    ``value`` holds the raw bytes of a pdq (32), md5 (16) or sha256 (32) entry;
    ``hashes`` the members of a pdq-set; ``frames`` the frames of a vpdq entry.
    """

    kind: SignalKind
    value: bytes = b""
    quality: int | None = None
    hashes: tuple[PdqHash, ...] = ()
    frames: tuple[VpdqFrameIn, ...] = ()
    external_id: str | None = None
    note: str | None = None
    metadata: JsonObject = field(default_factory=dict)
    # Local features of the picture (``redress.signals.verify.encode_features``), kept
    # beside the entry when it was banked from pixels with verification on.
    features: bytes | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class EntryRead:
    """A stored bank entry (child hashes not included)."""

    id: int
    bank_id: int
    kind: SignalKind
    value: bytes
    quality: int | None
    source: EntrySource
    external_id: str | None
    added_at: dt.datetime
    removed_at: dt.datetime | None
    note: str | None
    metadata: JsonObject

    @property
    def value_hex(self) -> str:
        """The value as hex (for pdq-set / vpdq: the digest of the member list)."""
        return self.value.hex()


@dataclass(frozen=True, slots=True)
class AddResult:
    """What adding entries did: IDs now active that were not before, and duplicates."""

    added: tuple[int, ...]
    duplicates: int


@dataclass(frozen=True, slots=True)
class BankStats:
    """Counts per signal type for one bank."""

    bank: BankRead
    active: dict[str, int]
    removed: int
    matches: int


@dataclass(frozen=True, slots=True)
class CaseRead:
    """A victim case without its secrets."""

    id: int
    case_number: str
    status: CaseStatus
    locale: str
    contact: str | None
    bank_id: int
    created_at: dt.datetime
    updated_at: dt.datetime
    entry_ids: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class CaseCreated:
    """A new case and its PIN. The PIN is shown once and cannot be recovered."""

    case: CaseRead
    pin: str


@dataclass(frozen=True, slots=True)
class SightingIn:
    """Where and when an item was seen."""

    platform: str | None = None
    chat: str | None = None
    message_id: str | None = None
    sender: str | None = None
    seen_at: dt.datetime | None = None


@dataclass(frozen=True, slots=True)
class MediaQuery:
    """The signals of one scanned item, as the matcher takes them."""

    kind: str = "image"
    sha256: bytes | None = None
    md5: bytes | None = None
    size: int | None = None
    media_type: str | None = None
    pdq: tuple[PdqHash, ...] = ()
    vpdq: tuple[VpdqFrameIn, ...] = ()
    # The image's robust query set (docs/robustness.md), each hash with its radius.
    robust: tuple[DerivedHash, ...] = ()
    # The video's frames without its letterbox bars, matched as an alternative frame set.
    vpdq_trimmed: tuple[VpdqFrameIn, ...] = ()
    # The image itself, for verifying near misses with local features (only when the
    # installation keeps features of banked pictures; decoded only if needed).
    picture: ScannedPicture | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True, slots=True, order=True)
class MatchResult:
    """One bank entry the item matched, nearest first when sorted."""

    distance: int
    bank_id: int
    bank_name: str
    bank_purpose: BankPurpose
    entry_id: int
    signal: SignalKind
    case_ids: tuple[int, ...] = ()
    query_share: float | None = None
    entry_share: float | None = None
    # A near miss (hashes within NEAR_MISS_BITS of the entry's radius, not within it)
    # that local features confirmed: a reviewer decides, never an automatic action.
    verified: bool = field(default=False, compare=False)


@dataclass(frozen=True, slots=True)
class ScanOutcome:
    """The matcher's answer for one item: its seen-media ID and its matches."""

    item_id: int
    matches: tuple[MatchResult, ...]


@dataclass(frozen=True, slots=True)
class AuditRead:
    """One audit log event."""

    id: int
    at: dt.datetime
    actor: str
    action: AuditAction
    target: str
    details: JsonObject


class BankStore(Protocol):
    """Banks and their entries. Implementations ``flush()``; the caller commits."""

    def create_bank(
        self,
        name: str,
        purpose: BankPurpose,
        pdq_threshold: int,
        outcome_policy: str | None = None,
    ) -> BankRead:
        """Create a bank; :class:`BankExistsError` if the name is taken."""
        ...

    def get_bank(self, name: str) -> BankRead:
        """The bank called ``name``; :class:`BankNotFoundError` if none."""
        ...

    def get_bank_by_id(self, bank_id: int) -> BankRead:
        """The bank with ``bank_id``; :class:`BankNotFoundError` if none."""
        ...

    def list_banks(self) -> list[BankRead]:
        """Every bank, by name."""
        ...

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
        """Change a bank's matching settings."""
        ...

    def add_entries(
        self, bank_id: int, entries: Sequence[EntryIn], source: EntrySource
    ) -> AddResult:
        """Add entries; an existing (or removed) identical entry collapses into one."""
        ...

    def remove_entries(self, entry_ids: Iterable[int]) -> list[int]:
        """Soft-remove entries; returns the IDs that were active."""
        ...

    def get_entry(self, entry_id: int) -> EntryRead:
        """One entry by ID."""
        ...

    def find_entries(self, bank_id: int, kind: SignalKind, value: bytes) -> list[EntryRead]:
        """Entries of ``bank_id`` with exactly this kind and value (active or removed)."""
        ...

    def iter_entries(
        self, bank_id: int, *, include_removed: bool = False, chunk: int = 10_000
    ) -> Iterable[EntryRead]:
        """Stream a bank's entries in ID order."""
        ...

    def entry_hashes(self, entry_id: int) -> list[PdqHash]:
        """The member PDQ hashes of a pdq-set or vpdq entry (frames in order)."""
        ...

    def stats(self, bank_id: int) -> BankStats:
        """Counts for ``redress bank stats``."""
        ...


class CaseStore(Protocol):
    """Victim cases. Implementations ``flush()``; the caller commits."""

    def create_case(
        self, case_number: str, pin_hash: str, bank_id: int, locale: str, contact: str | None
    ) -> CaseRead:
        """Insert a case in status Received."""
        ...

    def get_case(self, case_number: str) -> CaseRead:
        """The case with that number; :class:`CaseNotFoundError` if none."""
        ...

    def pin_hash(self, case_number: str) -> str:
        """The stored argon2 hash of the case's PIN."""
        ...

    def set_status(self, case_id: int, status: CaseStatus) -> CaseRead:
        """Change status (and erase the contact when Deleted)."""
        ...

    def link_entries(self, case_id: int, entry_ids: Iterable[int]) -> None:
        """Record that these entries belong to the case."""
        ...

    def orphaned_entries(self, case_id: int) -> list[int]:
        """Active entries of the case that no open case still holds."""
        ...


class SeenStore(Protocol):
    """The history of scanned media, their sightings and matches."""

    def record_item(self, query: MediaQuery, sighting: SightingIn | None) -> int:
        """Insert (or find) the item for ``query``, add the sighting; returns the item ID."""
        ...

    def record_items(self, entries: Sequence[tuple[MediaQuery, SightingIn | None]]) -> list[int]:
        """:meth:`record_item` for a batch; the item IDs in order."""
        ...

    def record_matches(
        self, item_id: int, matches: Sequence[MatchResult], *, retroactive: bool = False
    ) -> int:
        """Record matches (once per item and entry); returns how many were new."""
        ...

    def matches_for_item(self, item_id: int) -> list[MatchResult]:
        """The matches recorded for an item."""
        ...


class CaseClosure(Protocol):
    """Told, inside the status change's transaction, that a victim case closed.

    ``CaseService`` calls it when a case becomes Withdrawn or Deleted, after its
    hashes were removed from matching, so other domains can honour the victim's
    request too (the evidence domain erases what it captured for the case: its
    items' triggers name the case by :func:`case_key`).
    """

    def case_closed(self, case: CaseRead, status: CaseStatus, actor: str) -> None:
        """The case is now ``status`` (Withdrawn or Deleted), at ``actor``'s request."""
        ...


def case_key(case_id: int) -> str:
    """How other domains name a case in their own records (evidence triggers): its ID."""
    return str(case_id)
