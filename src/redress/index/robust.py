"""Search protected pictures by their robust hash sets, each hash at its own radius.

A protected picture is stored as its reference set
(:func:`redress.signals.robust.reference_hash_set`): up to 64 hashes, each with
its own threshold. A scanned picture brings its query set
(:func:`redress.signals.robust.query_hash_set`). A pair matches when its
distance is within the smaller of the two thresholds, the rule of
:func:`redress.signals.robust.match_sets`.

The hashes are kept in one :class:`~redress.index.interfaces.PdqIndex` per
threshold (there are two or three distinct thresholds), so any index
implementation (brute force, or a faster one) serves unchanged: each query hash
is searched in each tier at ``min(tier threshold, query threshold)``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from redress.index.brute import BruteForceIndex
from redress.index.interfaces import PdqIndex
from redress.signals.robust import DerivedHash


@dataclass(frozen=True, slots=True, order=True)
class RobustHit:
    """A protected picture whose reference set meets the query set: best distance and pair."""

    distance: int
    entry_id: int
    reference_threshold: int
    query_kind: str


class RobustIndex:
    """Entries (protected pictures) with reference hash sets; queries are hash sets too."""

    def __init__(self, make_index: Callable[[], PdqIndex] = BruteForceIndex) -> None:
        self._make_index = make_index
        self._tiers: dict[int, PdqIndex] = {}
        self._entries: set[int] = set()

    def add(self, entry_id: int, reference: Sequence[DerivedHash]) -> None:
        """Add (or extend) an entry with its reference hashes, grouped by threshold."""
        by_threshold: dict[int, list[bytes]] = {}
        for derived in reference:
            by_threshold.setdefault(derived.threshold, []).append(derived.pdq.bits)
        for threshold, hashes in by_threshold.items():
            tier = self._tiers.get(threshold)
            if tier is None:
                tier = self._tiers[threshold] = self._make_index()
            tier.add(entry_id, hashes)
        if by_threshold:
            self._entries.add(entry_id)

    def remove(self, entry_id: int) -> bool:
        """Remove every hash of an entry; True if it was present."""
        found = False
        for tier in self._tiers.values():
            found = tier.remove(entry_id) or found
        self._entries.discard(entry_id)
        return found

    def search(self, query: Sequence[DerivedHash]) -> list[RobustHit]:
        """Entries that any query hash meets within the pair's threshold, nearest first."""
        best: dict[int, RobustHit] = {}
        for derived in query:
            for threshold, tier in self._tiers.items():
                limit = min(threshold, derived.threshold)
                for hit in tier.search(derived.pdq.bits, limit):
                    found = RobustHit(hit.distance, hit.entry_id, threshold, derived.kind)
                    current = best.get(hit.entry_id)
                    if current is None or found.distance < current.distance:
                        best[hit.entry_id] = found
        return sorted(best.values())

    def __len__(self) -> int:
        """Number of entries with at least one stored hash."""
        return len(self._entries)
