"""Brute-force exact index: the reference every faster index is checked against."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from redress.errors import InvalidInputError
from redress.index.interfaces import IndexHit

_MAX_THRESHOLD = 256


def _check_threshold(threshold: int) -> None:
    if not 0 <= threshold <= _MAX_THRESHOLD:
        raise InvalidInputError(
            f"a PDQ threshold is 0-{_MAX_THRESHOLD} bits; got {threshold}", code="bad_threshold"
        )


class BruteForceIndex:
    """Compares the query with every stored hash. Exact by construction; O(n) per search."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._hashes = np.zeros((0, 32), dtype=np.uint8)
        self._ids = np.zeros(0, dtype=np.int64)

    def add(self, entry_id: int, hashes: Sequence[bytes]) -> None:
        """Add (or extend) an entry with one or more 32-byte hashes."""
        rows = np.frombuffer(b"".join(hashes), dtype=np.uint8).reshape(-1, 32)
        if any(len(h) != 32 for h in hashes):
            raise InvalidInputError("a PDQ hash is 32 bytes", code="bad_pdq_hash")
        self.add_many(np.full(len(rows), entry_id, dtype=np.int64), rows)

    def add_many(self, entry_ids: npt.NDArray[np.int64], hashes: npt.NDArray[np.uint8]) -> None:
        """Bulk add ``(n, 32)`` hashes for ``(n,)`` entry IDs."""
        if hashes.ndim != 2 or hashes.shape[1] != 32 or len(entry_ids) != len(hashes):
            raise InvalidInputError("hashes must be (n, 32) uint8 with n entry IDs")
        with self._lock:
            self._hashes = np.concatenate([self._hashes, hashes.astype(np.uint8)])
            self._ids = np.concatenate([self._ids, entry_ids.astype(np.int64)])

    def remove(self, entry_id: int) -> bool:
        """Remove every hash of an entry."""
        with self._lock:
            keep = self._ids != entry_id
            found = not bool(keep.all())
            self._hashes, self._ids = self._hashes[keep], self._ids[keep]
            return found

    def search(self, query: bytes, threshold: int) -> list[IndexHit]:
        """Entries within ``threshold`` bits of ``query``, nearest first."""
        if len(query) != 32:
            raise InvalidInputError("a PDQ hash is 32 bytes", code="bad_pdq_hash")
        return self.search_many(np.frombuffer(query, dtype=np.uint8).reshape(1, 32), threshold)[0]

    def search_many(self, queries: npt.NDArray[np.uint8], threshold: int) -> list[list[IndexHit]]:
        """Batch search; one result list per query row."""
        _check_threshold(threshold)
        with self._lock:
            hashes, ids = self._hashes, self._ids
        results: list[list[IndexHit]] = []
        for query in queries:
            distances = np.bitwise_count(np.bitwise_xor(hashes, query)).sum(axis=1, dtype=np.int64)
            best: dict[int, int] = {}
            for row in np.flatnonzero(distances <= threshold):
                entry, dist = int(ids[row]), int(distances[row])
                if dist < best.get(entry, _MAX_THRESHOLD + 1):
                    best[entry] = dist
            results.append(sorted(IndexHit(d, e) for e, d in best.items()))
        return results

    def __len__(self) -> int:
        with self._lock:
            return len(np.unique(self._ids))
