"""RobustIndex finds protected pictures from a query hash set, honouring every pair's threshold."""

from __future__ import annotations

import numpy as np
from PIL import ImageOps

from redress.index import BruteForceIndex, RobustIndex
from redress.signals.robust import DerivedHash, match_sets, query_hash_set, reference_hash_set
from redress.signals.types import PdqHash
from signals.test_robust import EDITS, jpeg_round_trip, photo_like


def hash_with_bits_set(count: int) -> PdqHash:
    bits = np.zeros(256, dtype=np.uint8)
    bits[:count] = 1
    return PdqHash(np.packbits(bits).tobytes(), 100)


def test_edited_copies_find_their_own_picture_only() -> None:
    index = RobustIndex(BruteForceIndex)
    pictures = {entry: photo_like(seed) for entry, seed in ((1, 7), (2, 40), (3, 41))}
    for entry, picture in pictures.items():
        index.add(entry, reference_hash_set(np.asarray(picture)))
    assert len(index) == 3
    for edit in ("crop off the top 12%", "phone screenshot, dark", "meme captions"):
        copy = jpeg_round_trip(EDITS[edit](pictures[2]))
        hits = index.search(query_hash_set(copy))
        assert [hit.entry_id for hit in hits] == [2], edit
    flipped = jpeg_round_trip(ImageOps.mirror(pictures[3]))
    assert [hit.entry_id for hit in index.search(query_hash_set(flipped))] == [3]


def test_index_agrees_with_match_sets_on_pair_thresholds() -> None:
    zero = PdqHash(bytes(32), 100)
    reference = [DerivedHash("dihedral/original", zero, 31), DerivedHash("crop", zero, 26)]
    index = RobustIndex()
    index.add(9, reference)
    for distance, query_threshold in ((20, 31), (28, 31), (28, 26), (31, 31), (33, 31)):
        query = [DerivedHash("whole", hash_with_bits_set(distance), query_threshold)]
        expected = match_sets(reference, query).matched
        assert bool(index.search(query)) == expected, (distance, query_threshold)
    hits = index.search([DerivedHash("region0", hash_with_bits_set(24), 28)])
    assert hits[0].distance == 24
    assert hits[0].query_kind == "region0"


def test_removed_entries_are_not_found() -> None:
    index = RobustIndex()
    reference = reference_hash_set(np.asarray(photo_like(7)))
    index.add(5, reference)
    assert index.remove(5)
    assert not index.remove(5)
    assert len(index) == 0
    assert index.search(query_hash_set(np.asarray(photo_like(7)))) == []
