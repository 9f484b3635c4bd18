"""Robust hash sets in the banks (issue #11, docs/robustness.md).

A protected picture whose pixels the server holds is banked with its
*reference set* as one ``pdq-set`` entry: the member hashes in the set's
order, and their kinds in the entry's metadata under ``"robust"``. The
members are indexed like any pdq-set's (so the index and its follower need
nothing new); what differs is the radius: each member matches only within its
own kind's threshold (31 for the flips, 28 for crops and rotations, 26 for
halves), never the bank's wider one. The matcher therefore re-checks every
candidate robust entry against the scanned item's query set with
:func:`redress.signals.robust.match_sets`; this module holds that step, so
the matcher's code only calls it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from redress.errors import InvalidInputError
from redress.signals.robust import (
    PLAIN_THRESHOLD,
    DerivedHash,
    SetMatch,
    match_sets,
    reference_from_members,
    reference_threshold,
)
from redress.signals.types import PdqHash, SignalKind
from redress.store.interfaces import EntryIn, JsonObject, MatchResult, MediaQuery
from redress.store.models import BankEntry, EntryHash

# The metadata key of a robust pdq-set entry: the members' kinds, in order.
ROBUST_KEY = "robust"
# The metadata key of a vPDQ entry that banks one of a video's reference crops
# (``redress.signals.vpdq.video_crop_windows``): the crop's name.
VIDEO_CROP_KEY = "video_crop"


def robust_entry(reference: Sequence[DerivedHash], metadata: JsonObject) -> EntryIn | None:
    """The pdq-set entry that banks a picture's reference set (``None`` for an empty set)."""
    if not reference:
        return None
    meta: JsonObject = {**metadata, ROBUST_KEY: [h.kind for h in reference]}
    return EntryIn(
        SignalKind.PDQ_SET,
        hashes=tuple(h.pdq for h in reference),
        quality=max(h.quality for h in reference),
        metadata=meta,
    )


def query_set(query: MediaQuery) -> tuple[DerivedHash, ...]:
    """The scanned item's query set: its robust set, else its plain hashes at 31."""
    if query.robust:
        return query.robust
    return tuple(DerivedHash("whole", h, PLAIN_THRESHOLD) for h in query.pdq)


def robust_kinds(metadata: JsonObject | None) -> list[str] | None:
    """The member kinds of a robust entry's metadata (``None`` when it is not one)."""
    kinds = (metadata or {}).get(ROBUST_KEY)
    if not isinstance(kinds, list) or not all(isinstance(k, str) for k in kinds):
        return None
    return [str(k) for k in kinds]


def reference_sets(
    session: Session, entry_ids: Sequence[int]
) -> dict[int, tuple[DerivedHash, ...]]:
    """The reference sets of those ``entry_ids`` that are robust pdq-set entries."""
    ids = sorted(set(entry_ids))
    if not ids:
        return {}
    kinds_of: dict[int, list[str]] = {}
    for start in range(0, len(ids), 1000):
        for entry_id, meta in session.execute(
            select(BankEntry.id, BankEntry.meta)
            .where(BankEntry.id.in_(ids[start : start + 1000]))
            .where(BankEntry.signal_type == SignalKind.PDQ_SET.value)
        ):
            kinds = robust_kinds(meta)
            if kinds is not None:
                kinds_of[entry_id] = kinds
    if not kinds_of:
        return {}
    members: dict[int, list[PdqHash]] = {e: [] for e in kinds_of}
    for entry_id, value, quality in session.execute(
        select(EntryHash.entry_id, EntryHash.value, EntryHash.quality)
        .where(EntryHash.entry_id.in_(sorted(kinds_of)))
        .order_by(EntryHash.entry_id, EntryHash.position)
    ):
        members[entry_id].append(PdqHash(value, quality))
    out: dict[int, tuple[DerivedHash, ...]] = {}
    for entry_id, kinds in kinds_of.items():
        try:
            out[entry_id] = reference_from_members(kinds, members[entry_id])
        except InvalidInputError:
            # A set whose metadata does not describe its members (edited by
            # hand, or from a newer release) is matched at no radius at all
            # rather than at the bank's wider one.
            out[entry_id] = ()
    return out


def member_thresholds(session: Session, entry_ids: Sequence[int]) -> dict[tuple[int, int], int]:
    """(entry ID, member position) -> radius, for each member of a robust entry in ``entry_ids``."""
    out: dict[tuple[int, int], int] = {}
    ids = sorted(set(entry_ids))
    for start in range(0, len(ids), 1000):
        for entry_id, meta in session.execute(
            select(BankEntry.id, BankEntry.meta)
            .where(BankEntry.id.in_(ids[start : start + 1000]))
            .where(BankEntry.signal_type == SignalKind.PDQ_SET.value)
        ):
            for position, kind in enumerate(robust_kinds(meta) or []):
                try:
                    out[entry_id, position] = reference_threshold(kind)
                except InvalidInputError:
                    out[entry_id, position] = -1  # unknown kind: never matches
    return out


def recheck(reference: Sequence[DerivedHash], query: MediaQuery, bank_threshold: int) -> int | None:
    """The distance at which a robust entry matches the query, or ``None`` when it does not.

    Each pair matches within the smaller of its two hashes' radii, and never
    beyond the bank's own threshold.
    """
    verdict: SetMatch = match_sets(reference, query_set(query))
    if not verdict.matched or verdict.best is None or verdict.best.distance > bank_threshold:
        return None
    return verdict.best.distance


def without_duplicates(
    session: Session,
    results: Sequence[MatchResult],
    references: Mapping[int, Sequence[DerivedHash]],
) -> list[MatchResult]:
    """``results`` less each robust entry whose picture's plain PDQ entry matched too.

    A file banked from pixels is two entries: its plain PDQ (for exchanges)
    and its reference set, whose ``dihedral/original`` member is that same
    hash. When both match one scanned item, that is one picture found once;
    the plain entry's match is kept.
    """
    originals = {
        r.entry_id: h.pdq.bits
        for r in results
        for h in references.get(r.entry_id, ())
        if h.kind == "dihedral/original"
    }
    plain_ids = [r.entry_id for r in results if r.signal is SignalKind.PDQ]
    if not originals or not plain_ids:
        return list(results)
    plain = {
        (bank_id, bytes(value))
        for bank_id, value in session.execute(
            select(BankEntry.bank_id, BankEntry.value).where(BankEntry.id.in_(plain_ids))
        )
    }
    return [
        r
        for r in results
        if r.entry_id not in originals or (r.bank_id, originals[r.entry_id]) not in plain
    ]
