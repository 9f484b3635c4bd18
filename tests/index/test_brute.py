"""The brute-force reference index (every faster index is checked against it)."""

from __future__ import annotations

import numpy as np
import pytest

from redress.errors import InvalidInputError
from redress.index import BruteForceIndex, IndexHit


def flip(bits: bytes, n: int, rng: np.random.Generator) -> bytes:
    value = int.from_bytes(bits, "big")
    for pos in rng.choice(256, size=n, replace=False):
        value ^= 1 << int(pos)
    return value.to_bytes(32, "big")


def test_empty_and_single_entry_index_answer_correctly() -> None:
    index = BruteForceIndex()
    query = bytes(range(32))
    assert index.search(query, 31) == []
    index.add(7, [query])
    assert index.search(query, 31) == [IndexHit(0, 7)]


def test_radius_is_inclusive_and_best_distance_per_entry_is_reported() -> None:
    rng = np.random.default_rng(1)
    base = rng.integers(0, 256, 32, dtype=np.uint8).tobytes()
    index = BruteForceIndex()
    index.add(1, [flip(base, 31, rng), flip(base, 5, rng)])
    index.add(2, [flip(base, 32, rng)])
    assert index.search(base, 31) == [IndexHit(5, 1)]
    assert [h.entry_id for h in index.search(base, 32)] == [1, 2]
    assert index.remove(1)
    assert index.search(base, 31) == []
    assert not index.remove(1)


def test_bad_threshold_is_rejected() -> None:
    with pytest.raises(InvalidInputError):
        BruteForceIndex().search(bytes(32), 300)
