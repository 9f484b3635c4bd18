"""Rules of the bank and case domain, and matching against banks and history.

Services are built per unit of work with the session the edge opened; they
call stores (which only flush) and never commit. Public entry points:

- :class:`BankService`: create banks, add/remove entries (with retroactive matching).
- :class:`CaseService`: victim cases, PINs, status changes and withdrawal.
- :class:`Matcher`: match a :class:`~redress.store.interfaces.MediaQuery` against
  every enabled bank; :meth:`Matcher.scan` also records the item and its matches.
- :class:`RetroMatcher`: match newly added entries against everything seen before.
- :func:`vpdq_frame_share`: the swappable vPDQ comparison.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from redress.errors import RedressError
from redress.signals.robust import match_sets
from redress.signals.types import SignalKind
from redress.signals.verify import NEAR_MISS_BITS, decode_features, verify_copy
from redress.store import robust
from redress.store.errors import (
    BadBankSettingError,
    BankNotFoundError,
    CaseClosedError,
    WrongPinError,
)
from redress.store.interfaces import (
    AddResult,
    AuditAction,
    BankPurpose,
    BankRead,
    BankStats,
    CaseClosure,
    CaseCreated,
    CaseRead,
    CaseStatus,
    EntryIn,
    EntrySource,
    MatchResult,
    MediaQuery,
    ScanOutcome,
    SightingIn,
)
from redress.store.models import BankEntry, EntryHash, SeenItem
from redress.store.store import (
    SqlAuditLog,
    SqlBankStore,
    SqlCaseStore,
    SqlSeenStore,
    active_entry_state,
    exact_matches_many,
)
from redress.store.sync import IndexFollower, SeenFollower, unique_frames, utc_now

log = logging.getLogger(__name__)

DEFAULT_CASE_BANK = "victim-cases"
_BANK_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
# Crockford's base32 without I, L, O, U: easy to read aloud and to type.
_CASE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


@dataclass(frozen=True, slots=True)
class FrameShare:
    """How two vPDQ frame sets overlap."""

    query_share: float
    entry_share: float
    distance: int


FrameShareFn = Callable[[npt.NDArray[np.uint8], npt.NDArray[np.uint8], int], FrameShare]


# A banked clip of at least this many distinct frames (seconds, at one hash a second)
# also matches a longer video that holds it whole: a compilation that splices a
# victim's clip between others. Shorter clips only match by Meta's rule.
CLIP_MIN_FRAMES = 5


def frame_sets_match(share: FrameShare, entry_frames: int, share_min: float) -> bool:
    """Whether a scanned video matches a banked one: Meta's rule (at least ``share_min``
    of the scanned video's frames are in the banked one: a copy or an excerpt), or its
    converse for a banked clip of at least :data:`CLIP_MIN_FRAMES` distinct frames (at
    least ``share_min`` of the clip's frames are in the scanned video)."""
    if share.query_share >= share_min:
        return True
    return entry_frames >= CLIP_MIN_FRAMES and share.entry_share >= share_min


def vpdq_frame_share(
    query: npt.NDArray[np.uint8], entry: npt.NDArray[np.uint8], threshold: int
) -> FrameShare:
    """Share of each side's unique frames that have a partner within ``threshold`` bits.

    Both inputs are ``(n, 32)`` arrays of unique quality frames. ``distance``
    is the closest pair. Exact and O(m * n); the index domain's frame index
    can replace it (pass ``frame_share=`` to :class:`Matcher`).
    """
    if not len(query) or not len(entry):
        return FrameShare(0.0, 0.0, 256)
    best_q = np.empty(len(query), dtype=np.int64)
    best_e = np.full(len(entry), 257, dtype=np.int64)
    for start in range(0, len(query), 256):
        block = query[start : start + 256]
        dist = np.bitwise_count(block[:, None, :] ^ entry[None, :, :]).sum(axis=2, dtype=np.int64)
        best_q[start : start + len(block)] = dist.min(axis=1)
        best_e = np.minimum(best_e, dist.min(axis=0))
    return FrameShare(
        float((best_q <= threshold).mean()),
        float((best_e <= threshold).mean()),
        int(best_q.min()),
    )


def new_case_number() -> str:
    """A human-friendly, unguessable case number: ``RC-XXXX-XXXX-XXXX`` (60 random bits)."""
    chars = "".join(secrets.choice(_CASE_ALPHABET) for _ in range(12))
    return f"RC-{chars[:4]}-{chars[4:8]}-{chars[8:]}"


def new_pin() -> str:
    """An 8-digit PIN."""
    return f"{secrets.randbelow(10**8):08d}"


class RetroMatcher:
    """Matches newly added entries against the seen-media history and records the matches."""

    def __init__(
        self,
        seen: SeenFollower,
        *,
        vpdq_share: float = 0.8,
        frame_share: FrameShareFn = vpdq_frame_share,
    ) -> None:
        self.seen = seen
        self.vpdq_share = vpdq_share
        self.frame_share = frame_share

    def match_entries(self, session: Session, entry_ids: Sequence[int]) -> int:
        """Search the history for these entries; returns how many new matches were recorded."""
        if not entry_ids:
            return 0
        self.seen.catch_up()
        # Nothing seen yet (a fresh install importing its first lists): nothing to search.
        if session.scalar(select(SeenItem.id).limit(1)) is None:
            return 0
        bank_store = SqlBankStore(session)
        seen_store = SqlSeenStore(session)
        now = utc_now()
        banks: dict[int, BankRead] = {}
        found: dict[int, list[MatchResult]] = {}
        ids = sorted(set(entry_ids))
        for start in range(0, len(ids), 10_000):
            rows = session.execute(
                select(BankEntry.id, BankEntry.bank_id, BankEntry.signal_type, BankEntry.value)
                .where(BankEntry.id.in_(ids[start : start + 10_000]))
                .where(BankEntry.removed_at.is_(None))
            ).all()
            by_kind: dict[str, list[tuple[int, int, bytes]]] = {}
            for entry_id, bank_id, kind, value in rows:
                by_kind.setdefault(kind, []).append((entry_id, bank_id, value))
            for bank_id in {r[1] for r in rows} - banks.keys():
                banks[bank_id] = bank_store.get_bank_by_id(bank_id)

            def hit(
                item: int,
                entry: int,
                bank: BankRead,
                kind: str,
                dist: int,
                share: float | None = None,
            ) -> None:
                found.setdefault(item, []).append(
                    MatchResult(
                        dist,
                        bank.id,
                        bank.name,
                        bank.purpose,
                        entry,
                        SignalKind(kind),
                        query_share=share,
                    )
                )

            for kind in ("md5", "sha256"):
                group = by_kind.get(kind, [])
                items = seen_store.item_ids_by_digest(kind, [g[2] for g in group])
                for entry_id, bank_id, value in group:
                    for item in items.get(value, []):
                        if banks[bank_id].matching_at(now):
                            hit(item, entry_id, banks[bank_id], kind, 0)
            pdq_rows = [(e, b, v) for e, b, v in by_kind.get("pdq", []) if len(v) == 32]
            set_ids = [e for e, _b, _v in by_kind.get("pdq-set", [])]
            set_members = set(set_ids)
            # A robust set's member matches only within its own kind's radius.
            member_limit: dict[int, int] = {}
            if set_ids:
                bank_of = {e: b for e, b, _v in by_kind["pdq-set"]}
                radius = robust.member_thresholds(session, set_ids)
                for entry_id, position, value in session.execute(
                    select(EntryHash.entry_id, EntryHash.position, EntryHash.value).where(
                        EntryHash.entry_id.in_(set_ids)
                    )
                ):
                    if (entry_id, position) in radius:
                        member_limit[len(pdq_rows)] = radius[entry_id, position]
                    pdq_rows.append((entry_id, bank_of[entry_id], value))
            if pdq_rows and len(self.seen.images):
                queries = np.frombuffer(b"".join(r[2] for r in pdq_rows), dtype=np.uint8)
                widest = max(banks[b].pdq_threshold for _e, b, _v in pdq_rows)
                results = self.seen.images.search_many(queries.reshape(-1, 32), widest)
                for row, ((entry_id, bank_id, _v), hits) in enumerate(
                    zip(pdq_rows, results, strict=True)
                ):
                    bank = banks[bank_id]
                    kind = "pdq-set" if entry_id in set_members else "pdq"
                    limit = min(bank.pdq_threshold, member_limit.get(row, bank.pdq_threshold))
                    for h in hits:
                        if h.distance <= limit and bank.matching_at(now):
                            hit(h.entry_id, entry_id, bank, kind, h.distance)
            for entry_id, bank_id, _v in by_kind.get("vpdq", []):
                bank = banks[bank_id]
                frames = unique_frames(
                    [
                        h.bits
                        for h in bank_store.entry_hashes(entry_id)
                        if h.quality >= self.seen.quality_min
                    ]
                )
                if not len(frames) or not len(self.seen.frames) or not bank.matching_at(now):
                    continue
                candidates = {
                    h.entry_id
                    for hits in self.seen.frames.search_many(frames, bank.pdq_threshold)
                    for h in hits
                }
                for item in sorted(candidates):
                    # The video as posted, and without its letterbox bars: two readings.
                    for item_frames in (
                        self.seen.item_frames(item),
                        self.seen.item_trimmed_frames(item),
                    ):
                        if item_frames is None:
                            continue
                        share = self.frame_share(item_frames, frames, bank.pdq_threshold)
                        if frame_sets_match(share, len(frames), self.vpdq_share):
                            hit(item, entry_id, bank, "vpdq", share.distance, share.query_share)
        pairs: list[tuple[int, MatchResult]] = []
        references = robust.reference_sets(
            session,
            [m.entry_id for ms in found.values() for m in ms if m.signal.value == "pdq-set"],
        )
        for item, matches in found.items():
            best: dict[int, MatchResult] = {}
            for m in matches:
                if m.entry_id not in best or m.distance < best[m.entry_id].distance:
                    best[m.entry_id] = m
            kept = robust.without_duplicates(session, list(best.values()), references)
            pairs.extend((item, m) for m in kept)
        recorded = seen_store.record_many_matches(pairs, retroactive=True)
        if recorded:
            SqlAuditLog(session).append(
                "redress",
                AuditAction.MATCH_RETROACTIVE,
                "seen-media",
                {"new_matches": recorded, "entries": len(ids)},
            )
        return recorded


class BankService:
    """Bank rules: names, thresholds, entries, audit, retroactive matching."""

    def __init__(
        self,
        session: Session,
        *,
        default_threshold: int = 31,
        retro: RetroMatcher | None = None,
        actor: str = "cli",
    ) -> None:
        self.session = session
        self.banks = SqlBankStore(session)
        self.audit = SqlAuditLog(session)
        self.default_threshold = default_threshold
        self.retro = retro
        self.actor = actor

    def create(
        self,
        name: str,
        purpose: BankPurpose = BankPurpose.INTERNAL,
        *,
        pdq_threshold: int | None = None,
        outcome_policy: str | None = None,
    ) -> BankRead:
        """Create a bank with a checked name and threshold."""
        if not _BANK_NAME.match(name):
            raise BadBankSettingError(
                f"bank name {name!r}: use 1-100 letters, digits, '_', '.', '-', starting with a "
                "letter or digit"
            )
        threshold = self.default_threshold if pdq_threshold is None else pdq_threshold
        if not 0 <= threshold <= 128:
            raise BadBankSettingError(f"PDQ threshold is 0-128 bits; got {threshold}")
        bank = self.banks.create_bank(name, purpose, threshold, outcome_policy)
        self.audit.append(
            self.actor,
            AuditAction.BANK_CREATE,
            f"bank:{name}",
            {"purpose": purpose.value, "pdq_threshold": threshold},
        )
        return bank

    def get(self, name: str) -> BankRead:
        """A bank by name."""
        return self.banks.get_bank(name)

    def ensure(self, name: str, purpose: BankPurpose) -> BankRead:
        """The bank called ``name``, created with ``purpose`` if it does not exist."""
        try:
            return self.banks.get_bank(name)
        except BankNotFoundError:
            return self.create(name, purpose)

    def add(
        self, name: str, entries: Sequence[EntryIn], source: EntrySource = EntrySource.MODERATOR
    ) -> AddResult:
        """Add entries to a bank, then match them against the seen-media history."""
        bank = self.banks.get_bank(name)
        result = self.banks.add_entries(bank.id, entries, source)
        self.audit.append(
            self.actor,
            AuditAction.BANK_ENTRY_ADD,
            f"bank:{name}",
            {"added": len(result.added), "duplicates": result.duplicates, "source": source.value},
        )
        if self.retro is not None:
            self.retro.match_entries(self.session, result.added)
        return result

    def remove(self, name: str, entry_ids: Sequence[int]) -> list[int]:
        """Soft-remove entries of a bank (IDs of other banks are refused)."""
        bank = self.banks.get_bank(name)
        state = active_entry_state(self.session, entry_ids)
        foreign = sorted(i for i in entry_ids if state.get(i, (bank.id, "", True))[0] != bank.id)
        missing = sorted(i for i in entry_ids if i not in state)
        if foreign or missing:
            raise BankNotFoundError(
                f"bank {name!r} has no entries {', '.join(map(str, missing + foreign))}"
            )
        removed = self.banks.remove_entries(entry_ids)
        self.audit.append(
            self.actor, AuditAction.BANK_ENTRY_REMOVE, f"bank:{name}", {"removed": list(removed)}
        )
        return removed

    def set_enabled(self, name: str, enabled: bool) -> BankRead:
        """Switch matching against a bank on or off."""
        bank = self.banks.get_bank(name)
        updated = self.banks.update_bank(bank.id, enabled=enabled, clear_disabled_until=enabled)
        self.audit.append(self.actor, AuditAction.BANK_UPDATE, f"bank:{name}", {"enabled": enabled})
        return updated

    def disable_until(self, name: str, until: dt.datetime) -> BankRead:
        """Pause matching against a bank until ``until`` (naive times are UTC)."""
        bank = self.banks.get_bank(name)
        if until.tzinfo is None:
            until = until.replace(tzinfo=dt.UTC)
        updated = self.banks.update_bank(bank.id, enabled=True, disabled_until=until)
        self.audit.append(
            self.actor,
            AuditAction.BANK_UPDATE,
            f"bank:{name}",
            {"disabled_until": until.isoformat()},
        )
        return updated

    def list(self) -> list[BankRead]:
        """Every bank."""
        return self.banks.list_banks()

    def stats(self, name: str) -> BankStats:
        """Counts for one bank."""
        return self.banks.stats(self.banks.get_bank(name).id)


class CaseService:
    """Victim cases: creation with a one-time PIN, status, withdrawal."""

    def __init__(
        self,
        session: Session,
        *,
        retro: RetroMatcher | None = None,
        actor: str = "cli",
        hasher: PasswordHasher | None = None,
        default_threshold: int = 31,
        closures: Sequence[CaseClosure] = (),
    ) -> None:
        self.session = session
        self.closures = tuple(closures)
        self.cases = SqlCaseStore(session)
        self.bank_service = BankService(
            session, default_threshold=default_threshold, retro=None, actor=actor
        )
        self.audit = SqlAuditLog(session)
        self.retro = retro
        self.actor = actor
        self.hasher = hasher or PasswordHasher()

    def create(
        self,
        entries: Sequence[EntryIn],
        *,
        bank: str = DEFAULT_CASE_BANK,
        locale: str = "en",
        contact: str | None = None,
    ) -> CaseCreated:
        """Open a case holding ``entries``; returns the case and its PIN (shown once)."""
        target = self.bank_service.ensure(bank, BankPurpose.VICTIM_CASES)
        pin = new_pin()
        case = self.cases.create_case(
            new_case_number(), self.hasher.hash(pin), target.id, locale, contact
        )
        result = self.bank_service.banks.add_entries(target.id, entries, EntrySource.CASE)
        # Duplicates collapse: link the existing entries too, so the case holds all its hashes.
        ids = set(result.added)
        for entry in entries:
            value = entry.value
            if entry.kind in (SignalKind.PDQ_SET, SignalKind.VPDQ):
                continue
            ids.update(
                e.id for e in self.bank_service.banks.find_entries(target.id, entry.kind, value)
            )
        if any(e.kind in (SignalKind.PDQ_SET, SignalKind.VPDQ) for e in entries):
            ids.update(result.added)
        self.cases.link_entries(case.id, ids)
        self.audit.append(
            self.actor,
            AuditAction.CASE_CREATE,
            f"case:{case.case_number}",
            {"bank": bank, "entries": len(ids), "locale": locale},
        )
        if self.retro is not None:
            self.retro.match_entries(self.session, result.added)
        return CaseCreated(self.cases.get_case(case.case_number), pin)

    def get(self, case_number: str) -> CaseRead:
        """A case by number."""
        return self.cases.get_case(case_number)

    def verify_pin(self, case_number: str, pin: str) -> CaseRead:
        """The case, if ``pin`` is its PIN; :class:`WrongPinError` otherwise (and audited)."""
        stored = self.cases.pin_hash(case_number)
        try:
            self.hasher.verify(stored, pin.strip())
        except (VerificationError, InvalidHashError) as exc:
            case = self.cases.get_case(case_number)
            self.audit.append("victim", AuditAction.CASE_PIN_FAILED, f"case:{case.case_number}")
            raise WrongPinError("the case number and PIN do not match") from exc
        return self.cases.get_case(case_number)

    def set_status(
        self, case_number: str, status: CaseStatus, *, actor: str | None = None
    ) -> CaseRead:
        """Move a case to ``status``; closing it removes its hashes from matching."""
        case = self.cases.get_case(case_number)
        if case.status is CaseStatus.DELETED or (
            case.status is CaseStatus.WITHDRAWN and status is not CaseStatus.DELETED
        ):
            raise CaseClosedError(f"case {case.case_number} is {case.status.value}")
        if status is case.status:
            return case
        removed: list[int] = []
        if status.closed:
            removed = self.bank_service.banks.remove_entries(self.cases.orphaned_entries(case.id))
        updated = self.cases.set_status(case.id, status)
        self.audit.append(
            actor or self.actor,
            AuditAction.for_status(status),
            f"case:{case.case_number}",
            {"from": case.status.value, "removed_entries": len(removed)},
        )
        closed = self.cases.get_case(updated.case_number)
        if status.closed:
            for closure in self.closures:  # e.g. erase the case's evidence, same transaction
                closure.case_closed(closed, status, actor or self.actor)
        return closed

    def withdraw(self, case_number: str, pin: str) -> CaseRead:
        """The victim withdraws her case (PIN required); its hashes stop matching."""
        self.verify_pin(case_number, pin)
        return self.set_status(case_number, CaseStatus.WITHDRAWN, actor="victim")


# A candidate entry of a query: (distance, signal found by, query share, entry share).
_Candidate = tuple[int, SignalKind | None, float | None, float | None]


class Matcher:
    """Matches scanned items against every enabled bank, each at its own threshold.

    PDQ and vPDQ go through the follower's in-memory indexes; MD5 and SHA-256
    are exact lookups in the database. Every candidate is re-checked against
    the database before it is returned, so an entry removed a moment ago
    never matches even if the index has not caught up yet.
    """

    def __init__(
        self,
        follower: IndexFollower,
        *,
        quality_min: int = 50,
        vpdq_share: float = 0.8,
        frame_share: FrameShareFn = vpdq_frame_share,
    ) -> None:
        self.follower = follower
        self.quality_min = quality_min
        self.vpdq_share = vpdq_share
        self.frame_share = frame_share

    def match(self, session: Session, query: MediaQuery) -> list[MatchResult]:
        """The entries ``query`` matches, nearest first (nothing is recorded)."""
        return self.match_many(session, [query])[0]

    def match_many(
        self, session: Session, queries: Sequence[MediaQuery]
    ) -> list[list[MatchResult]]:
        """What each of ``queries`` matches, nearest first, in their order (nothing is
        recorded). The same answers as :meth:`match` one by one, for the cost of one:
        one index search over every PDQ hash, one exact-digest query per digest kind,
        and one re-check of the candidates' entries, cases and banks for the batch."""
        now = utc_now()
        banks = self.follower.banks()
        found: list[dict[int, _Candidate]] = [{} for _ in queries]

        def offer(
            n: int,
            entry_id: int,
            dist: int,
            kind: SignalKind | None = None,
            q: float | None = None,
            e: float | None = None,
        ) -> None:
            candidates = found[n]
            if entry_id not in candidates or dist < candidates[entry_id][0]:
                candidates[entry_id] = (dist, kind, q, e)

        for kind in (SignalKind.MD5, SignalKind.SHA256):
            digests = {
                n: digest
                for n, query in enumerate(queries)
                if (digest := query.md5 if kind is SignalKind.MD5 else query.sha256)
            }
            if digests:
                exact = exact_matches_many(session, kind, set(digests.values()))
                for n, digest in digests.items():
                    for entry_id, _bank in exact.get(digest, ()):
                        offer(n, entry_id, 0, kind)
        owners: list[int] = []
        good: list[bytes] = []
        for n, query in enumerate(queries):
            for pdq in query.pdq:
                if pdq.quality >= self.quality_min:
                    owners.append(n)
                    good.append(pdq.bits)
        widest = self.follower.max_threshold
        if good and len(self.follower.index):
            arr = np.frombuffer(b"".join(good), dtype=np.uint8).reshape(-1, 32)
            for n, hits in zip(owners, self.follower.index.search_many(arr, widest), strict=True):
                for h in hits:
                    bank = banks.get(self.follower.bank_of(h.entry_id))
                    if bank is not None and h.distance <= bank.pdq_threshold:
                        offer(n, h.entry_id, h.distance)
        # Robust query hashes (issue #11): each within its own radius.
        derived_owners: list[int] = []
        derived_hashes = []
        for n, query in enumerate(queries):
            for derived in query.robust:
                if derived.quality >= self.quality_min:
                    derived_owners.append(n)
                    derived_hashes.append(derived)
        if derived_hashes and len(self.follower.index):
            arr = np.frombuffer(b"".join(h.pdq.bits for h in derived_hashes), dtype=np.uint8)
            for n, derived, hits in zip(
                derived_owners,
                derived_hashes,
                self.follower.index.search_many(arr.reshape(-1, 32), widest),
                strict=True,
            ):
                for h in hits:
                    bank = banks.get(self.follower.bank_of(h.entry_id))
                    if bank is not None and h.distance <= min(
                        bank.pdq_threshold, derived.threshold
                    ):
                        offer(n, h.entry_id, h.distance)
        for n, query in enumerate(queries):
            # The frames as posted, and the frames without the video's letterbox bars
            # (when it has bars): each is compared with an entry's frames on its own,
            # as two readings of the same video; mixing them would halve the share.
            for alternative in (query.vpdq, query.vpdq_trimmed):
                frames = unique_frames(
                    [f.pdq.bits for f in alternative if f.pdq.quality >= self.quality_min]
                )
                if not len(frames) or not len(self.follower.frames):
                    continue
                hits_per_frame = self.follower.frames.search_many(frames, widest)
                entries = {h.entry_id for hits in hits_per_frame for h in hits}
                for entry_id in sorted(entries):
                    bank = banks.get(self.follower.bank_of(entry_id))
                    entry_frames = self.follower.entry_frames(entry_id)
                    if bank is None or entry_frames is None:
                        continue
                    share = self.frame_share(frames, entry_frames, bank.pdq_threshold)
                    if frame_sets_match(share, len(entry_frames), self.vpdq_share):
                        offer(
                            n,
                            entry_id,
                            share.distance,
                            SignalKind.VPDQ,
                            share.query_share,
                            share.entry_share,
                        )
        near = self._near_misses(queries)
        every = sorted(
            {i for candidates in found for i in candidates} | {i for m in near for i in m}
        )
        if not every:
            return [[] for _ in queries]
        state = active_entry_state(session, every)
        cases = SqlCaseStore(session).cases_for_entries(every)
        bank_store = SqlBankStore(session)
        # Bank settings are read fresh too: a bank disabled a moment ago never matches.
        fresh = {b: bank_store.get_bank_by_id(b) for b in {v[0] for v in state.values() if v[2]}}
        # Robust reference sets match member by member, each at its own radius.
        references = robust.reference_sets(
            session, [i for i, v in state.items() if v[1] == SignalKind.PDQ_SET.value]
        )
        stored_features = (
            bank_store.entry_features(sorted({i for misses in near for i in misses}))
            if any(near)
            else {}
        )
        answers: list[list[MatchResult]] = []
        for query, candidates, misses in zip(queries, found, near, strict=True):
            results = []
            for entry_id, (dist, found_kind, q, e) in candidates.items():
                bank_id, stored_kind, active = state.get(entry_id, (0, "", False))
                if not active:
                    continue
                bank = fresh[bank_id]
                if not bank.matching_at(now):
                    continue
                if entry_id in references:
                    rechecked = robust.recheck(references[entry_id], query, bank.pdq_threshold)
                    if rechecked is None:
                        continue
                    dist = rechecked
                results.append(
                    MatchResult(
                        dist,
                        bank.id,
                        bank.name,
                        bank.purpose,
                        entry_id,
                        found_kind or SignalKind(stored_kind),
                        cases.get(entry_id, ()),
                        q,
                        e,
                    )
                )
            matched = {r.entry_id for r in results}
            for entry_id, nearest in misses.items():
                if entry_id in matched:
                    continue
                bank_id, stored_kind, active = state.get(entry_id, (0, "", False))
                if not active or not fresh[bank_id].matching_at(now):
                    continue
                bank = fresh[bank_id]
                margin: int | None = nearest - bank.pdq_threshold
                if entry_id in references:
                    # A set's members each have their own radius.
                    verdict = match_sets(references[entry_id], robust.query_set(query))
                    margin, nearest = verdict.margin, verdict.distance or nearest
                if margin is None or not 0 < margin <= NEAR_MISS_BITS:
                    continue
                if self._verified(query, stored_features.get(entry_id), entry_id):
                    results.append(
                        MatchResult(
                            nearest,
                            bank.id,
                            bank.name,
                            bank.purpose,
                            entry_id,
                            SignalKind(stored_kind),
                            cases.get(entry_id, ()),
                            verified=True,
                        )
                    )
            answers.append(sorted(robust.without_duplicates(session, results, references)))
        return answers

    def _near_misses(self, queries: Sequence[MediaQuery]) -> list[dict[int, int]]:
        """Per query that carries its picture: entries with stored local features whose
        hashes came within NEAR_MISS_BITS of the widest radius (entry ID -> nearest
        distance). Entries among them that match are skipped by the caller; a set entry
        offered by a plain hash that fails its members' own radii is a near miss too."""
        near: list[dict[int, int]] = [{} for _ in queries]
        featured = self.follower.featured
        if not len(featured):
            return near
        owners: list[int] = []
        hashes: list[bytes] = []
        for n, query in enumerate(queries):
            if query.picture is None:
                continue
            for pdq in (*query.pdq, *(d.pdq for d in query.robust)):
                if pdq.quality >= self.quality_min:
                    owners.append(n)
                    hashes.append(pdq.bits)
        if not hashes:
            return near
        radius = min(256, self.follower.max_threshold + NEAR_MISS_BITS)
        arr = np.frombuffer(b"".join(hashes), dtype=np.uint8).reshape(-1, 32)
        for n, hits in zip(owners, featured.search_many(arr, radius), strict=True):
            for h in hits:
                misses = near[n]
                misses[h.entry_id] = min(misses.get(h.entry_id, 256), h.distance)
        return near

    def _verified(self, query: MediaQuery, stored: bytes | None, entry_id: int) -> bool:
        # A verification that cannot run (OpenCV missing, a picture that no longer
        # decodes, damaged stored features) leaves the near miss unmatched, as without
        # verification: it must never fail the scan.
        if stored is None or query.picture is None:
            return False
        try:
            verdict = verify_copy(decode_features(stored), query.picture.rgb())
        except RedressError as exc:
            log.warning("near miss of entry %d not verified: %s", entry_id, exc.code)
            return False
        except Exception as exc:  # noqa: BLE001 - an OpenCV failure must not fail the scan
            log.warning("near miss of entry %d not verified: %s", entry_id, type(exc).__name__)
            return False
        return verdict.same_scene

    def scan(
        self, session: Session, query: MediaQuery, sighting: SightingIn | None = None
    ) -> ScanOutcome:
        """Match ``query`` and record it in the seen-media history with its matches."""
        matches = self.match(session, query)
        seen = SqlSeenStore(session)
        item_id = seen.record_item(query, sighting)
        seen.record_matches(item_id, matches)
        return ScanOutcome(item_id, tuple(matches))
