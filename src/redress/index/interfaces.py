"""The interface the pipeline and the store use to search PDQ hashes.

The index knows nothing of the database: it maps integer entry IDs (the
store's bank-entry IDs) to one or more 32-byte PDQ hashes and answers "which
entries have a hash within distance T of this query, and how close".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True, slots=True, order=True)
class IndexHit:
    """One entry within the radius: its ID and the best distance over its hashes."""

    distance: int
    entry_id: int


class PdqIndex(Protocol):
    """Exact Hamming-radius search over PDQ hashes; every implementation passes tests/index."""

    def add(self, entry_id: int, hashes: Sequence[bytes]) -> None:
        """Add (or extend) an entry with one or more 32-byte hashes; visible to the next search."""
        ...

    def add_many(self, entry_ids: npt.NDArray[np.int64], hashes: npt.NDArray[np.uint8]) -> None:
        """Bulk add: ``hashes`` is ``(n, 32)`` uint8, ``entry_ids`` ``(n,)`` (IDs may repeat)."""
        ...

    def remove(self, entry_id: int) -> bool:
        """Remove every hash of an entry; True if it was present."""
        ...

    def search(self, query: bytes, threshold: int) -> list[IndexHit]:
        """Entries with a hash within ``threshold`` bits of ``query``, nearest first."""
        ...

    def search_many(self, queries: npt.NDArray[np.uint8], threshold: int) -> list[list[IndexHit]]:
        """Batch form of :meth:`search`; ``queries`` is ``(m, 32)`` uint8."""
        ...

    def __len__(self) -> int:
        """Number of entries (not hashes) present."""
        ...
