"""Exact PDQ radius search by multi-index hashing (Norouzi et al.), with a C inner loop.

How a search stays exact: the 256 bits are split into ``m`` chunks. If a stored
hash is within ``T`` bits of the query and every chunk ``i`` is given a radius
``t_i`` with ``sum(t_i + 1) > T``, then at least one chunk differs from the
query's chunk by at most ``t_i`` bits (the generalised pigeonhole principle).
So probing, in every chunk, each key within ``t_i`` of the query's key finds
every true match; each candidate is then verified with the full 256-bit
distance, so nothing outside the radius is reported either. A small cost model
picks the ``t_i`` (and falls back to a linear scan when that is cheaper).

Layout: one *main segment* (hashes sorted by entry ID in one contiguous
``(n, 32)`` array, and per chunk a CSR table: ``offsets`` of ``2**width + 1``
uint32 and ``rows`` of ``n`` uint32 built by counting sort) plus a *delta*
segment of recent additions scanned linearly, and tombstone bitmaps for
removals. Additions and removals are visible to the next search; the delta is
merged into a rebuilt main segment on a background thread when it grows past
``delta_limit`` rows (writes made meanwhile are carried over), or at once on
:meth:`MihIndex.compact`.

Concurrency: searches read an immutable snapshot tuple (one attribute read),
so they never wait for writers; writers serialise on a lock. Removal sets bits
in place, which a concurrent search sees either before or after. The C code
releases the GIL, so :meth:`MihIndex.search_many` spreads a batch over threads.
"""

from __future__ import annotations

import itertools
import math
import os
import threading
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from redress.index import _mih, snapshot
from redress.index.errors import (
    BadEntryIdError,
    BadPdqHashError,
    BadThresholdError,
    SnapshotCorruptError,
)
from redress.index.interfaces import IndexHit
from redress.index.snapshot import SnapshotState
from redress.signals.types import PdqHash, parse_pdq_hex

MAX_THRESHOLD = 256
_MAX_CHUNK_BITS = 22  # a 22-bit chunk needs a 16 MiB offset table
_MIN_CHUNK_BITS = 8
_DEFAULT_DELTA_LIMIT = 16_384  # a linear scan of 512 KiB per search, ~20 us
# Relative costs for the radius planner, measured on the benchmark machine: a
# probe and a candidate each cost about one cache miss; a linear scan streams.
_PROBE_COST = 1.0
_CANDIDATE_COST = 1.2
_LINEAR_COST = 0.06

U8Array = npt.NDArray[np.uint8]
I64Array = npt.NDArray[np.int64]
U32Array = npt.NDArray[np.uint32]


@dataclass(frozen=True, slots=True)
class ChunkLayout:
    """How the 256 bits are cut into chunks: bit offsets and widths, in order."""

    starts: tuple[int, ...]
    widths: tuple[int, ...]

    def __post_init__(self) -> None:
        ok = (
            0 < len(self.widths) == len(self.starts) <= 64
            and sum(self.widths) == 256
            and all(1 <= w <= _MAX_CHUNK_BITS for w in self.widths)
            and list(self.starts) == [sum(self.widths[:i]) for i in range(len(self.widths))]
        )
        if not ok:
            # Wider chunks would need offset tables of 2**width entries each (gigabytes).
            raise ValueError(
                f"a chunk layout covers 256 bits in 12-64 consecutive chunks of 1-"
                f"{_MAX_CHUNK_BITS} bits; got widths {self.widths}"
            )

    @classmethod
    def for_size(cls, n: int) -> ChunkLayout:
        """The cheapest layout for ``n`` hashes at the default threshold, within a memory cap.

        Candidates are ``k`` wide chunks plus narrower ones sharing the remaining
        bits; the radius planner's cost at threshold 31 ranks them, and offset
        tables may take at most ``max(16 * n, 1 MiB)`` bytes. At 10M hashes this
        picks eight 22-bit chunks and four 20-bit ones.
        """
        return _best_layout(max(n, 1).bit_length())

    @classmethod
    def even(cls, chunks: int) -> ChunkLayout:
        """``chunks`` chunks of as-equal-as-possible width covering all 256 bits."""
        if chunks < 1:
            raise ValueError(f"a chunk layout needs at least one chunk; got {chunks}")
        base, extra = divmod(256, chunks)
        widths = tuple(base + 1 if i < extra else base for i in range(chunks))
        starts = tuple(sum(widths[:i]) for i in range(chunks))
        return cls(starts, widths)


_LAYOUT_THRESHOLD = 31  # layouts are tuned for the default PDQ threshold
_OFFSET_BYTES_PER_HASH = 16
_OFFSET_BYTES_FLOOR = 1 << 20


@lru_cache(maxsize=64)
def _best_layout(size_class: int) -> ChunkLayout:
    n = 2**size_class
    budget = max(_OFFSET_BYTES_PER_HASH * n, _OFFSET_BYTES_FLOOR)
    best: tuple[float, tuple[int, ...]] | None = None
    for wide in range(_MIN_CHUNK_BITS, _MAX_CHUNK_BITS + 1):
        for k in range(1, 256 // wide + 1):
            rest = 256 - wide * k
            options: list[tuple[int, ...]] = []
            if rest == 0:
                options.append(())
            else:
                low = max(_MIN_CHUNK_BITS, wide - 4)
                for m in range(math.ceil(rest / wide), rest // low + 1):
                    base, extra = divmod(rest, m)
                    options.append((base + 1,) * extra + (base,) * (m - extra))
            for tail in options:
                widths = (wide,) * k + tail
                if not 12 <= len(widths) <= 64 or sum(4 * 2**w for w in widths) > budget:
                    continue
                cost = _plan_cost(widths, size_class, _LAYOUT_THRESHOLD)
                if cost is not None and (best is None or cost < best[0]):
                    best = (cost, widths)
    widths = best[1] if best else ChunkLayout.even(32).widths
    return ChunkLayout(tuple(sum(widths[:i]) for i in range(len(widths))), widths)


def _plan_cost(widths: tuple[int, ...], size_class: int, threshold: int) -> float | None:
    radii = plan_radii(widths, size_class, threshold)
    if radii is None:
        return None
    n = 2**size_class
    total = 0.0
    for w, t in zip(widths, radii, strict=True):
        keys = sum(math.comb(w, k) for k in range(t + 1))
        total += keys * (_PROBE_COST + _CANDIDATE_COST * n / 2**w)
    return total


@dataclass(frozen=True, slots=True)
class IndexStats:
    """Sizes of an index, for monitoring and the benchmark."""

    entries: int
    hashes: int
    main_rows: int
    delta_rows: int
    removed_rows: int
    chunks: int
    chunk_widths: tuple[int, ...]
    nbytes: int


@lru_cache(maxsize=4096)
def plan_radii(widths: tuple[int, ...], size_class: int, threshold: int) -> tuple[int, ...] | None:
    """Per-chunk probe radii with ``sum(t_i + 1) > threshold``, or None for a linear scan.

    Greedy on marginal cost: each step raises the radius of the chunk whose next
    ring of keys is cheapest (probes plus expected candidates for ``2**size_class``
    stored hashes). Exactness only needs the sum condition, which the loop
    guarantees; the costs only decide speed.
    """
    n = float(2**size_class)
    radii = [-1] * len(widths)
    total = 0
    cost = 0.0
    while total <= threshold:
        best, best_cost = -1, math.inf
        for i, w in enumerate(widths):
            nxt = radii[i] + 1
            if nxt > w:
                continue
            ring = math.comb(w, nxt)
            step = ring * (_PROBE_COST + _CANDIDATE_COST * n / 2**w)
            if step < best_cost:
                best, best_cost = i, step
        if best < 0:
            return None  # the chunks cannot cover this radius: scan
        radii[best] += 1
        total += 1
        cost += best_cost
    if cost > _LINEAR_COST * n:
        return None
    return tuple(radii)


def as_pdq_bytes(value: bytes | str | PdqHash | U8Array) -> bytes:
    """Accept 32 raw bytes (or uint8s), 64 hex digits or a :class:`PdqHash`.

    Anything else raises BadPdqHashError.
    """
    if isinstance(value, PdqHash):
        return value.bits
    if isinstance(value, str):
        try:
            return parse_pdq_hex(value)
        except Exception as exc:
            raise BadPdqHashError(str(exc)) from exc
    if isinstance(value, np.ndarray) and value.dtype == np.uint8 and value.size == 32:
        return value.tobytes()
    if isinstance(value, bytes | bytearray | memoryview):
        raw = bytes(value)
        if len(raw) != 32:
            raise BadPdqHashError(f"a PDQ hash is 32 bytes; got {len(raw)}")
        return raw
    raise BadPdqHashError(f"a PDQ hash is bytes, hex text or PdqHash; got {type(value).__name__}")


def check_threshold(threshold: int) -> int:
    """Return ``threshold`` if it is an integer 0-256; raise BadThresholdError otherwise."""
    if isinstance(threshold, bool) or not isinstance(threshold, int | np.integer):
        raise BadThresholdError(f"a PDQ threshold is an integer; got {threshold!r}")
    if not 0 <= int(threshold) <= MAX_THRESHOLD:
        raise BadThresholdError(f"a PDQ threshold is 0-{MAX_THRESHOLD} bits; got {threshold}")
    return int(threshold)


def _as_hash_rows(hashes: object) -> U8Array:
    arr = np.asarray(hashes)
    if arr.ndim != 2 or arr.shape[1] != 32 or arr.dtype != np.uint8:
        raise BadPdqHashError(f"hashes must be an (n, 32) uint8 array; got {arr.dtype}{arr.shape}")
    return np.ascontiguousarray(arr)


def _as_entry_ids(entry_ids: object, n: int) -> I64Array:
    arr = np.asarray(entry_ids)
    if arr.ndim != 1 or len(arr) != n:
        raise BadEntryIdError(f"need one entry ID per hash: {n} hashes, IDs of shape {arr.shape}")
    if n and arr.dtype.kind not in "iu":
        raise BadEntryIdError(f"entry IDs must be integers; got {arr.dtype}")
    if arr.dtype == np.uint64 and n and int(arr.max()) > np.iinfo(np.int64).max:
        raise BadEntryIdError("entry IDs must fit a signed 64-bit integer")
    return np.ascontiguousarray(arr, dtype=np.int64)


def _check_entry_id(entry_id: int) -> int:
    if isinstance(entry_id, bool) or not isinstance(entry_id, int | np.integer):
        raise BadEntryIdError(f"an entry ID is an integer; got {entry_id!r}")
    value = int(entry_id)
    if not -(2**63) <= value < 2**63:
        raise BadEntryIdError(f"an entry ID must fit a signed 64-bit integer; got {value}")
    return value


def _bitmap(rows: int) -> U8Array:
    return np.zeros((rows + 7) // 8 + 1, dtype=np.uint8)


def _set_bits(bitmap: U8Array, rows: npt.NDArray[np.integer]) -> None:
    if len(rows):
        r = rows.astype(np.int64)
        np.bitwise_or.at(bitmap, r >> 3, (1 << (r & 7)).astype(np.uint8))


def _bits_set(bitmap: U8Array, rows: npt.NDArray[np.integer]) -> npt.NDArray[np.bool_]:
    r = rows.astype(np.int64)
    found: npt.NDArray[np.bool_] = ((bitmap[r >> 3] >> (r & 7).astype(np.uint8)) & 1).astype(
        np.bool_
    )
    return found


# Queries x indexed hashes below which a batch search stays on the calling thread.
_SPREAD_WORK = 1 << 24


class MainSegment:
    """The bulk of an index: hashes sorted by entry ID with one CSR table per chunk.

    Immutable except for the tombstone bitmap, whose bits are only ever set.
    """

    __slots__ = ("entries", "hashes", "layout", "offsets", "rows", "tomb")

    def __init__(
        self,
        hashes: U8Array,
        entries: I64Array,
        layout: ChunkLayout,
        offsets: tuple[U32Array, ...],
        rows: tuple[U32Array, ...],
        tomb: U8Array,
    ) -> None:
        self.hashes = hashes
        self.entries = entries
        self.layout = layout
        self.offsets = offsets
        self.rows = rows
        self.tomb = tomb

    @classmethod
    def build(
        cls,
        hashes: U8Array,
        entries: I64Array,
        threads: int = 2,
        layout: ChunkLayout | None = None,
    ) -> MainSegment:
        """Sort rows by entry ID and counting-sort every chunk (chunks built in parallel)."""
        n = len(hashes)
        if n >= 2**32 - 1:
            raise BadEntryIdError("an index segment holds fewer than 4,294,967,295 hashes")
        if n and not bool(np.all(entries[1:] >= entries[:-1])):
            order = np.argsort(entries, kind="stable")
            hashes, entries = hashes[order], entries[order]
        hashes = np.ascontiguousarray(hashes, dtype=np.uint8)
        entries = np.ascontiguousarray(entries, dtype=np.int64)
        layout = layout or ChunkLayout.for_size(n)
        offsets = tuple(np.empty(2**w + 1, dtype=np.uint32) for w in layout.widths)
        rows = tuple(np.empty(n, dtype=np.uint32) for _ in layout.widths)

        def one(c: int) -> None:
            _mih.build_chunk(hashes, layout.starts[c], layout.widths[c], offsets[c], rows[c])

        if threads > 1 and n > 100_000:
            with ThreadPoolExecutor(max_workers=threads) as pool:
                list(pool.map(one, range(len(layout.widths))))
        else:
            for c in range(len(layout.widths)):
                one(c)
        return cls(hashes, entries, layout, offsets, rows, _bitmap(n))

    def rows_of(self, entry_id: int) -> npt.NDArray[np.int64]:
        """Row numbers holding ``entry_id`` (contiguous, since rows are sorted by entry)."""
        lo = int(np.searchsorted(self.entries, entry_id, side="left"))
        hi = int(np.searchsorted(self.entries, entry_id, side="right"))
        return np.arange(lo, hi, dtype=np.int64)

    @property
    def nbytes(self) -> int:
        """Bytes held by the arrays of this segment."""
        arrays: list[npt.NDArray[Any]] = [
            self.hashes,
            self.entries,
            self.tomb,
            *self.offsets,
            *self.rows,
        ]
        return sum(a.nbytes for a in arrays)


class _Snapshot:
    """What a search reads: the main segment and a prefix of the delta buffers."""

    __slots__ = ("dcount", "dentries", "dhashes", "dtomb", "main")

    def __init__(
        self, main: MainSegment, dhashes: U8Array, dentries: I64Array, dtomb: U8Array, dcount: int
    ) -> None:
        self.main = main
        self.dhashes = dhashes
        self.dentries = dentries
        self.dtomb = dtomb
        self.dcount = dcount


class MihIndex:
    """Exact, incremental, persistent Hamming-radius index of PDQ hashes (a :class:`PdqIndex`).

    ``delta_limit`` rows of recent additions are scanned linearly before they are
    merged into the main segment; ``threads`` is how many threads a batch search
    and a build use.
    """

    def __init__(self, *, delta_limit: int = _DEFAULT_DELTA_LIMIT, threads: int | None = None):
        self._delta_limit = max(1, delta_limit)
        self._threads = max(1, threads if threads is not None else (os.cpu_count() or 1))
        self._lock = threading.RLock()
        empty = MainSegment.build(np.zeros((0, 32), np.uint8), np.zeros(0, np.int64))
        self._live_entries = 0
        # Background merge state: the thread, the segment generation it started from
        # (a synchronous merge bumps it, voiding the result) and removals made meanwhile.
        self._merging: threading.Thread | None = None
        self._generation = 0
        self._removed_while_merging: list[I64Array] = []
        self._install(empty, np.zeros((0, 32), np.uint8), np.zeros(0, np.int64), _bitmap(0), 0)

    # ---------------------------------------------------------------- building

    @classmethod
    def from_arrays(
        cls,
        entry_ids: npt.ArrayLike,
        hashes: npt.ArrayLike,
        *,
        delta_limit: int = _DEFAULT_DELTA_LIMIT,
        threads: int | None = None,
        layout: ChunkLayout | None = None,
    ) -> MihIndex:
        """Build an index from ``(n,)`` entry IDs and ``(n, 32)`` uint8 hashes in one pass.

        ``layout`` overrides the chunking chosen for the size (until the next merge).
        """
        index = cls(delta_limit=delta_limit, threads=threads)
        rows = _as_hash_rows(hashes)
        ids = _as_entry_ids(entry_ids, len(rows))
        main = MainSegment.build(rows, ids, index._threads, layout)
        index._live_entries = _distinct_sorted(main.entries)
        index._install(main, np.zeros((0, 32), np.uint8), np.zeros(0, np.int64), _bitmap(0), 0)
        return index

    def _install(
        self, main: MainSegment, dhashes: U8Array, dentries: I64Array, dtomb: U8Array, dcount: int
    ) -> None:
        self._main = main
        self._dhashes, self._dentries, self._dtomb = dhashes, dentries, dtomb
        self._dcount = dcount
        self._snap = _Snapshot(main, dhashes, dentries, dtomb, dcount)

    # ---------------------------------------------------------------- writes

    def add(self, entry_id: int, hashes: Sequence[bytes | str | PdqHash]) -> None:
        """Add (or extend) an entry with one or more hashes; visible to the next search."""
        entry = _check_entry_id(entry_id)
        raw = [as_pdq_bytes(h) for h in hashes]
        if not raw:
            return
        rows = np.frombuffer(b"".join(raw), dtype=np.uint8).reshape(-1, 32)
        self.add_many(np.full(len(rows), entry, dtype=np.int64), rows)

    def add_many(self, entry_ids: npt.ArrayLike, hashes: npt.ArrayLike) -> None:
        """Bulk add ``(n, 32)`` uint8 hashes for ``(n,)`` entry IDs (IDs may repeat)."""
        rows = _as_hash_rows(hashes)
        ids = _as_entry_ids(entry_ids, len(rows))
        if not len(rows):
            return
        with self._lock:
            new_entries = np.unique(ids)
            fresh = int(np.count_nonzero(~self._live_mask(new_entries)))
            if len(rows) > self._delta_limit:
                self._merge_now(rows, ids)  # a bulk load: build it into the main segment
            else:
                self._append_delta(rows, ids)
                if self._dcount > self._delta_limit:
                    self._start_merge()
            self._live_entries += fresh

    def _append_delta(self, rows: U8Array, ids: I64Array) -> None:
        start, end = self._dcount, self._dcount + len(rows)
        dhashes, dentries, dtomb = self._dhashes, self._dentries, self._dtomb
        if end > len(dhashes):
            # Grow into new buffers; searches holding the old snapshot keep the old ones.
            cap = max(1024, 2 * end)
            dhashes = np.zeros((cap, 32), np.uint8)
            dentries = np.zeros(cap, np.int64)
            grown = _bitmap(cap)
            dhashes[:start] = self._dhashes[:start]
            dentries[:start] = self._dentries[:start]
            grown[: len(dtomb)] = dtomb
            dtomb = grown
        # Rows past the published count are invisible to searches until the snapshot swap.
        dhashes[start:end] = rows
        dentries[start:end] = ids
        self._install(self._main, dhashes, dentries, dtomb, end)

    def _merged(
        self,
        main: MainSegment,
        main_dead: npt.NDArray[np.bool_],
        dhashes: U8Array,
        dentries: I64Array,
        delta_dead: npt.NDArray[np.bool_],
        extra_rows: U8Array,
        extra_ids: I64Array,
    ) -> MainSegment:
        hashes = np.concatenate([main.hashes[~main_dead], dhashes[~delta_dead], extra_rows])
        ids = np.concatenate([main.entries[~main_dead], dentries[~delta_dead], extra_ids])
        return MainSegment.build(hashes, ids, self._threads)

    def _merge_now(self, extra_rows: U8Array, extra_ids: I64Array) -> None:
        """Rebuild the main segment from everything live (caller holds the lock)."""
        main, d = self._main, self._dcount
        merged = self._merged(
            main,
            _bits_set(main.tomb, np.arange(len(main.hashes))),
            self._dhashes[:d],
            self._dentries[:d],
            _bits_set(self._dtomb, np.arange(d)),
            extra_rows,
            extra_ids,
        )
        self._generation += 1  # voids a background merge still running
        self._install(merged, np.zeros((0, 32), np.uint8), np.zeros(0, np.int64), _bitmap(0), 0)

    def _start_merge(self) -> None:
        """Merge the delta on a background thread; searches and writes carry on meanwhile."""
        if self._merging is not None:
            return
        main, d = self._main, self._dcount
        # Rows below ``d`` never change; their tombstones are copied as they stand now,
        # and removals made while the merge runs are replayed onto its result.
        job = (
            main,
            _bits_set(main.tomb, np.arange(len(main.hashes))),
            self._dhashes[:d],
            self._dentries[:d],
            _bits_set(self._dtomb, np.arange(d)),
        )
        self._removed_while_merging = []
        thread = threading.Thread(
            target=self._merge_in_background, args=(job, d, self._generation), daemon=True
        )
        self._merging = thread
        thread.start()

    def _merge_in_background(
        self,
        job: tuple[MainSegment, npt.NDArray[np.bool_], U8Array, I64Array, npt.NDArray[np.bool_]],
        merged_delta: int,
        generation: int,
    ) -> None:
        try:
            empty = np.zeros((0, 32), np.uint8), np.zeros(0, np.int64)
            merged = self._merged(*job, *empty)
        except Exception:  # noqa: BLE001 - e.g. out of memory: the delta keeps serving
            with self._lock:
                self._merging = None  # a later add retries
            return
        with self._lock:
            chain = False
            try:
                if generation == self._generation:
                    self._install_merged(merged, merged_delta)
                    chain = self._dcount > self._delta_limit  # adds outran this merge
            finally:
                self._merging = None
                if chain:
                    self._start_merge()

    def _install_merged(self, merged: MainSegment, merged_delta: int) -> None:
        if self._removed_while_merging:
            removed = np.unique(np.concatenate(self._removed_while_merging))
            lo = np.searchsorted(merged.entries, removed, side="left")
            hi = np.searchsorted(merged.entries, removed, side="right")
            _set_bits(merged.tomb, _ranges(lo, hi))
        # Rows added while merging stay in a new, smaller delta, with their tombstones.
        d = self._dcount
        rest = d - merged_delta
        cap = max(1024, 2 * rest)
        dhashes = np.zeros((cap, 32), np.uint8)
        dentries = np.zeros(cap, np.int64)
        dtomb = _bitmap(cap)
        dhashes[:rest] = self._dhashes[merged_delta:d]
        dentries[:rest] = self._dentries[merged_delta:d]
        dead = np.flatnonzero(_bits_set(self._dtomb, np.arange(merged_delta, d)))
        _set_bits(dtomb, dead)
        self._generation += 1
        self._install(merged, dhashes, dentries, dtomb, rest)
        self._removed_while_merging = []

    def wait_for_merge(self) -> None:
        """Block until no background merge is running (chained merges included)."""
        while True:
            with self._lock:
                thread = self._merging
            if thread is None:
                return
            thread.join()

    def compact(self) -> None:
        """Merge the delta and drop removed rows by rebuilding the main segment now."""
        with self._lock:
            if self._dcount or bool(self._main.tomb.any()):
                self._merge_now(np.zeros((0, 32), np.uint8), np.zeros(0, np.int64))

    def remove(self, entry_id: int) -> bool:
        """Remove every hash of an entry; True if it was present. Visible to the next search."""
        return self.remove_many([_check_entry_id(entry_id)]) > 0

    def remove_many(self, entry_ids: Iterable[int] | I64Array) -> int:
        """Remove every hash of each entry; returns how many of them were present."""
        if isinstance(entry_ids, np.ndarray):
            arr = entry_ids
        else:
            arr = np.array([_check_entry_id(e) for e in entry_ids], dtype=np.int64)
        ids = np.unique(_as_entry_ids(arr, len(arr)))
        if not len(ids):
            return 0
        with self._lock:
            main = self._main
            lo = np.searchsorted(main.entries, ids, side="left")
            hi = np.searchsorted(main.entries, ids, side="right")
            main_rows = _ranges(lo, hi)
            main_rows = main_rows[~_bits_set(main.tomb, main_rows)]
            d = self._dcount
            dpos = np.flatnonzero(np.isin(self._dentries[:d], ids))
            dpos = dpos[~_bits_set(self._dtomb, dpos)]
            present = np.union1d(main.entries[main_rows], self._dentries[dpos])
            _set_bits(main.tomb, main_rows)
            _set_bits(self._dtomb, dpos)
            if self._merging is not None:
                self._removed_while_merging.append(ids)
            self._live_entries -= len(present)
            return len(present)

    def _live_mask(self, ids: I64Array) -> npt.NDArray[np.bool_]:
        """For sorted unique ``ids``: which have at least one live row now."""
        main = self._main
        live = np.zeros(len(ids), dtype=np.bool_)
        lo = np.searchsorted(main.entries, ids, side="left")
        hi = np.searchsorted(main.entries, ids, side="right")
        rows = _ranges(lo, hi)
        if len(rows):
            alive = (~_bits_set(main.tomb, rows)).astype(np.int64)
            # live rows per range: prefix sums of the concatenated ranges, cut at range ends
            ends = np.cumsum(hi - lo)
            totals = np.concatenate([[0], np.cumsum(alive)])
            live |= (totals[ends] - totals[ends - (hi - lo)]) > 0
        d = self._dcount
        if d:
            dpos = np.flatnonzero(np.isin(self._dentries[:d], ids))
            dpos = dpos[~_bits_set(self._dtomb, dpos)]
            live |= np.isin(ids, self._dentries[dpos])
        return live

    # ---------------------------------------------------------------- reads

    def _raw_search(
        self, snap: _Snapshot, queries: U8Array, threshold: int
    ) -> tuple[U32Array, I64Array, npt.NDArray[np.int32]]:
        main = snap.main
        radii = plan_radii(main.layout.widths, max(1, len(main.hashes)).bit_length(), threshold)
        q, r, d = _mih.search(
            main.hashes,
            main.tomb,
            main.offsets,
            main.rows,
            main.layout.starts,
            main.layout.widths,
            radii,
            snap.dhashes[: snap.dcount],
            snap.dtomb,
            queries,
            threshold,
        )
        return (
            np.frombuffer(q, dtype=np.uint32),
            np.frombuffer(r, dtype=np.int64),
            np.frombuffer(d, dtype=np.int32),
        )

    @staticmethod
    def _group(
        snap: _Snapshot, nq: int, q: U32Array, rows: I64Array, dist: npt.NDArray[np.int32]
    ) -> list[list[IndexHit]]:
        results: list[list[IndexHit]] = [[] for _ in range(nq)]
        if not len(q):
            return results
        n = len(snap.main.entries)
        in_main = rows < n
        entries = np.empty(len(rows), dtype=np.int64)
        entries[in_main] = snap.main.entries[rows[in_main]]
        entries[~in_main] = snap.dentries[rows[~in_main] - n]
        best: dict[tuple[int, int], int] = {}
        for qi, e, d in zip(q.tolist(), entries.tolist(), dist.tolist(), strict=True):
            key = (qi, e)
            if d < best.get(key, MAX_THRESHOLD + 1):
                best[key] = d
        for (qi, e), d in best.items():
            results[qi].append(IndexHit(d, e))
        for hits in results:
            hits.sort()
        return results

    def search(self, query: bytes | str | PdqHash | U8Array, threshold: int) -> list[IndexHit]:
        """Entries with a hash within ``threshold`` bits of ``query``, nearest first."""
        t = check_threshold(threshold)
        raw = as_pdq_bytes(query)
        snap = self._snap
        q, r, d = self._raw_search(snap, np.frombuffer(raw, np.uint8), t)
        return self._group(snap, 1, q, r, d)[0]

    def search_many(
        self, queries: npt.NDArray[np.uint8], threshold: int, *, threads: int | None = None
    ) -> list[list[IndexHit]]:
        """Batch form of :meth:`search` for ``(m, 32)`` uint8 queries, spread over threads."""
        t = check_threshold(threshold)
        rows = _as_hash_rows(queries)
        snap = self._snap
        # A thread costs about a millisecond to start: worth it only when each one's share
        # of queries x indexed hashes is large (a 100-query batch against 10k hashes is not).
        per_thread = max(16, _SPREAD_WORK // max(1, len(snap.main.hashes) + snap.dcount))
        workers = max(1, min(threads or self._threads, len(rows) // per_thread))
        if workers == 1:
            q, r, d = self._raw_search(snap, rows, t)
            return self._group(snap, len(rows), q, r, d)
        bounds = np.linspace(0, len(rows), workers + 1).astype(int)
        parts = [(int(a), int(b)) for a, b in itertools.pairwise(bounds)]
        with ThreadPoolExecutor(max_workers=workers) as pool:
            found = list(pool.map(lambda ab: self._raw_search(snap, rows[ab[0] : ab[1]], t), parts))
        q = np.concatenate(
            [f[0].astype(np.int64) + a for f, (a, _) in zip(found, parts, strict=True)]
        )
        r = np.concatenate([f[1] for f in found])
        d = np.concatenate([f[2] for f in found])
        return self._group(snap, len(rows), q.astype(np.uint32), r, d)

    def live_entry_ids(self) -> I64Array:
        """Sorted distinct IDs of the entries present now."""
        snap = self._snap
        main = snap.main
        live_main = main.entries[~_bits_set(main.tomb, np.arange(len(main.entries)))]
        d = snap.dcount
        live_delta = snap.dentries[:d][~_bits_set(snap.dtomb, np.arange(d))]
        return np.unique(np.concatenate([live_main, live_delta]))

    def __len__(self) -> int:
        """Number of entries with at least one live hash."""
        return self._live_entries

    def stats(self) -> IndexStats:
        """Current sizes: entries, hashes, main and delta rows, removed rows, bytes."""
        with self._lock:
            main = self._main
            removed_main = int(np.unpackbits(main.tomb).sum())
            removed_delta = int(np.unpackbits(self._dtomb).sum())
            live_hashes = len(main.hashes) + self._dcount - removed_main - removed_delta
            return IndexStats(
                entries=self._live_entries,
                hashes=live_hashes,
                main_rows=len(main.hashes),
                delta_rows=self._dcount,
                removed_rows=removed_main + removed_delta,
                chunks=len(main.layout.widths),
                chunk_widths=main.layout.widths,
                nbytes=main.nbytes
                + self._dhashes.nbytes
                + self._dentries.nbytes
                + self._dtomb.nbytes,
            )

    # ---------------------------------------------------------------- persistence

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write a snapshot atomically (temp file, fsync, rename); see docs/index.md."""
        with self._lock:
            snapshot.write(Path(path), self._snapshot_state())

    @classmethod
    def load(
        cls,
        path: str | os.PathLike[str],
        *,
        mmap: bool = True,
        verify: bool = True,
        delta_limit: int = _DEFAULT_DELTA_LIMIT,
        threads: int | None = None,
    ) -> MihIndex:
        """Read a snapshot written by :meth:`save`.

        With ``mmap`` (the default) the main segment's arrays map the file
        read-only and share the page cache: loading 10M hashes takes well under a
        second and searches run at least as fast as on private copies. Saving
        replaces the file by rename, so a mapped snapshot is never changed under
        a running index. ``mmap=False`` reads private copies instead.
        """
        state = snapshot.read(Path(path), mmap=mmap, verify=verify)
        index = cls(delta_limit=delta_limit, threads=threads)
        try:
            layout = ChunkLayout(state.starts, state.widths)
        except ValueError as exc:
            raise SnapshotCorruptError(f"{path}: {exc}") from exc
        main = MainSegment(
            state.hashes, state.entries, layout, state.offsets, state.rows, state.tomb
        )
        dcount = len(state.dhashes)
        cap = max(1024, 2 * dcount)
        dhashes = np.zeros((cap, 32), np.uint8)
        dentries = np.zeros(cap, np.int64)
        dtomb = _bitmap(cap)
        dhashes[:dcount] = state.dhashes
        dentries[:dcount] = state.dentries
        dtomb[: len(state.dtomb)] = state.dtomb
        index._live_entries = state.live_entries
        index._install(main, dhashes, dentries, dtomb, dcount)
        return index

    def _snapshot_state(self) -> SnapshotState:
        main, d = self._main, self._dcount
        return SnapshotState(
            starts=main.layout.starts,
            widths=main.layout.widths,
            live_entries=self._live_entries,
            hashes=main.hashes,
            entries=main.entries,
            tomb=main.tomb,
            offsets=main.offsets,
            rows=main.rows,
            dhashes=self._dhashes[:d],
            dentries=self._dentries[:d],
            dtomb=self._dtomb[: (d + 7) // 8 + 1].copy(),
        )


def _ranges(lo: npt.NDArray[np.intp], hi: npt.NDArray[np.intp]) -> I64Array:
    """The concatenation of ``arange(lo[i], hi[i])`` for every i, vectorised."""
    counts = (hi - lo).astype(np.int64)
    total = int(counts.sum())
    if not total:
        return np.zeros(0, np.int64)
    starts = np.repeat(lo.astype(np.int64) - np.cumsum(counts) + counts, counts)
    found: I64Array = starts + np.arange(total, dtype=np.int64)
    return found


def _distinct_sorted(entries: I64Array) -> int:
    if not len(entries):
        return 0
    return int(np.count_nonzero(entries[1:] != entries[:-1])) + 1
