"""Keep in-memory PDQ indexes consistent with the database.

:class:`IndexFollower` builds the bank-entry index from the database at start
(active PDQ and pdq-set hashes streamed in NumPy blocks into ``add_many``)
and then follows the ``index_change`` log: each poll reads the events after
the last sequence number it applied, looks up the *current* state of the
entries they name, and adds or removes them. Reconciling against current
state makes replays harmless, so a restart or an overlap never duplicates
or resurrects an entry. Poll it from a thread (:meth:`IndexFollower.run`)
every 0.2 s and every process sharing the database sees every other
process's changes within a second.

:class:`SeenFollower` does the same for the seen-media history (the PDQ
hashes and vPDQ frames of every scanned item), which retroactive matching
searches when new entries arrive. Seen hashes are append-only; it follows
them by row ID and re-checks IDs that were skipped (a transaction still in
flight) until ``gap_timeout`` passes.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from redress.index.brute import BruteForceIndex
from redress.index.interfaces import PdqIndex
from redress.store.interfaces import BankRead, ChangeOp
from redress.store.models import Bank, EntryFeature
from redress.store.store import (
    HashBlock,
    SeenBlock,
    _bank_read,
    active_entry_state,
    last_change,
    last_seen_hash,
    read_changes,
    stream_active_hashes,
    stream_seen_hashes,
)

IndexFactory = Callable[[], PdqIndex]

log = logging.getLogger(__name__)


def id_runs_merge(runs: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Merge overlapping or touching ID runs."""
    merged: list[tuple[int, int]] = []
    for first, last in sorted(runs):
        if merged and first <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(last, merged[-1][1]))
        else:
            merged.append((first, last))
    return merged


def _grow(array: npt.NDArray[np.int32], size: int) -> npt.NDArray[np.int32]:
    if size <= len(array):
        return array
    grown = np.zeros(max(size, 2 * len(array), 1024), dtype=array.dtype)
    grown[: len(array)] = array
    return grown


@dataclass
class FollowerStats:
    """What a follower has applied (for `redress bank stats` and the benchmark)."""

    last_seq: int = 0
    entries: int = 0
    frames_entries: int = 0
    polls: int = 0
    loaded_in_s: float = 0.0
    hashes_loaded: int = 0
    failures: int = 0  # polls that failed (the database was unreachable) and were retried
    extra: dict[str, int] = field(default_factory=dict)


class IndexFollower:
    """The bank-entry PDQ index (and vPDQ frame index) kept in step with the database.

    ``index_factory`` makes an empty :class:`~redress.index.PdqIndex`; the
    integrator passes the fast implementation, tests pass ``BruteForceIndex``.
    """

    def __init__(
        self, engine: Engine, index_factory: IndexFactory, *, quality_min: int = 50
    ) -> None:
        self.engine = engine
        self.index: PdqIndex = index_factory()
        self.frames: PdqIndex = index_factory()
        # The hashes of entries with stored local features, searched wider for near
        # misses to verify: few (pictures the operator banked from files), so a brute
        # force search at any radius costs little.
        self.featured: PdqIndex = BruteForceIndex()
        self._featured_ids: set[int] = set()
        self.quality_min = quality_min
        self.stats = FollowerStats()
        self._lock = threading.Lock()
        # Entry ID -> bank ID (0 = not in the index); IDs are dense, so an array beats a dict.
        self._bank_of = np.zeros(0, dtype=np.int32)
        self._frames_of: dict[int, npt.NDArray[np.uint8]] = {}
        self._banks: dict[int, BankRead] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- reading ---------------------------------------------------------------------------

    def bank_of(self, entry_id: int) -> int:
        """The bank of an entry in the index (0 when it is not there)."""
        bank_of = self._bank_of
        return int(bank_of[entry_id]) if 0 <= entry_id < len(bank_of) else 0

    def banks(self) -> dict[int, BankRead]:
        """The banks as of the last poll."""
        return self._banks

    def entry_frames(self, entry_id: int) -> npt.NDArray[np.uint8] | None:
        """The quality frames of a vpdq entry in the index, ``(n, 32)``."""
        return self._frames_of.get(entry_id)

    @property
    def max_threshold(self) -> int:
        """The widest PDQ threshold of any bank (searches use it, then filter per bank)."""
        return max((b.pdq_threshold for b in self._banks.values()), default=0)

    # -- building and following ------------------------------------------------------------

    def start(self) -> FollowerStats:
        """Load every active entry from the database into fresh indexes (cold start)."""
        began = time.perf_counter()
        with Session(self.engine) as session:
            # Read the watermark first: whatever changes after it is replayed by the next poll.
            seq = last_change(session)
            self._load_banks(session)
            self._featured_ids = set(session.scalars(select(EntryFeature.entry_id)))
        loaded = 0
        # One bulk add: an index such as MihIndex builds its main segment once, rather than
        # rebuilding it for every streamed block.
        blocks = list(stream_active_hashes(self.engine))
        if blocks:
            whole = HashBlock(
                ids=np.concatenate([b.ids for b in blocks]),
                bank_ids=np.concatenate([b.bank_ids for b in blocks]),
                hashes=np.concatenate([b.hashes for b in blocks]),
            )
            del blocks
            self._add_block(whole, frames=False)
            loaded += len(whole.ids)
        for block in stream_active_hashes(self.engine, frames=True, quality_min=self.quality_min):
            self._add_block(block, frames=True)
            loaded += len(block.ids)
        self.stats.last_seq = seq
        self.stats.loaded_in_s = time.perf_counter() - began
        self.stats.hashes_loaded = loaded
        # Counted from our own map: len() of an index may be O(n).
        self.stats.entries = int(np.count_nonzero(self._bank_of))
        return self.stats

    def _load_banks(self, session: Session) -> None:
        self._banks = {b.id: _bank_read(b) for b in session.scalars(select(Bank))}

    def _add_block(self, block: HashBlock, *, frames: bool) -> None:
        # Callers only pass entries that are not in the index yet.
        if not len(block.ids):
            return
        with self._lock:
            self._bank_of = _grow(self._bank_of, int(block.ids.max()) + 1)
            if frames:
                order = np.argsort(block.ids, kind="stable")
                ids, hashes = block.ids[order], block.hashes[order]
                starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
                for begin, end in zip(starts, [*starts[1:], len(ids)], strict=True):
                    entry_id = int(ids[begin])
                    old = self._frames_of.get(entry_id)
                    rows = hashes[begin:end] if old is None else np.vstack([old, hashes[begin:end]])
                    unique = np.unique(rows, axis=0)
                    self._frames_of[entry_id] = unique
                    if old is not None:
                        self.frames.remove(entry_id)
                    self.frames.add_many(np.full(len(unique), entry_id, dtype=np.int64), unique)
            else:
                self.index.add_many(block.ids, block.hashes)
                if self._featured_ids:
                    chosen = np.isin(block.ids, np.fromiter(self._featured_ids, dtype=np.int64))
                    if chosen.any():
                        self.featured.add_many(block.ids[chosen], block.hashes[chosen])
            self._bank_of[block.ids] = block.bank_ids

    def poll(self) -> int:
        """Apply change-log events since the last poll; returns how many were read."""
        with Session(self.engine) as session:
            changes = read_changes(session, self.stats.last_seq)
            if not changes:
                return 0
            if any(c.op is ChangeOp.BANK for c in changes):
                self._load_banks(session)
            runs = [c.run for c in changes if c.run is not None]
            state = active_entry_state(session, runs=id_runs_merge(runs))
            ids = sorted(state)
            added_ids = [i for i, v in state.items() if v[2]]
            for start in range(0, len(added_ids), 1000):
                self._featured_ids.update(
                    session.scalars(
                        select(EntryFeature.entry_id).where(
                            EntryFeature.entry_id.in_(added_ids[start : start + 1000])
                        )
                    )
                )
        # Entries are never deleted, only marked removed, so every named ID is in ``state``.
        to_add: list[int] = []
        to_remove: list[int] = []
        for entry_id in ids:
            _bank, kind, active = state.get(entry_id, (0, "", False))
            present = self.bank_of(entry_id) != 0
            if active and not present and kind in ("pdq", "pdq-set", "vpdq"):
                to_add.append(entry_id)
            elif not active and present:
                to_remove.append(entry_id)
        for entry_id in to_remove:
            with self._lock:
                self.index.remove(entry_id)
                if self._frames_of.pop(entry_id, None) is not None:
                    self.frames.remove(entry_id)
                if entry_id in self._featured_ids:
                    self.featured.remove(entry_id)
                    self._featured_ids.discard(entry_id)
                self._bank_of[entry_id] = 0
        if to_add:
            for block in stream_active_hashes(self.engine, entry_ids=to_add):
                self._add_block(block, frames=False)
            for block in stream_active_hashes(
                self.engine, frames=True, entry_ids=to_add, quality_min=self.quality_min
            ):
                self._add_block(block, frames=True)
        self.stats.last_seq = changes[-1].seq
        self.stats.polls += 1
        return len(changes)

    def run(self, interval: float = 0.2) -> None:
        """Follow the change log in a daemon thread until :meth:`stop`."""
        if self._thread is not None:
            return

        def loop() -> None:
            delay = interval
            while not self._stop.wait(delay):
                try:
                    self.poll()
                except Exception as exc:  # the database restarted or failed over
                    # Polling is idempotent (the position moves only after a whole poll),
                    # so the follower waits and reads the same changes again; a dead thread
                    # would leave the index silently stale.
                    self.stats.failures += 1
                    log.warning("index follower: %s; retrying", exc, exc_info=True)
                    delay = min(5.0, max(delay * 2, interval))
                else:
                    delay = interval

        self._thread = threading.Thread(target=loop, name="redress-index-follower", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the following thread (if running)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None


class SeenFollower:
    """PDQ indexes over the seen-media history, for retroactive matching."""

    def __init__(
        self,
        engine: Engine,
        index_factory: IndexFactory,
        *,
        quality_min: int = 50,
        gap_timeout: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.engine = engine
        self.images: PdqIndex = index_factory()
        self.frames: PdqIndex = index_factory()
        self.quality_min = quality_min
        self.gap_timeout = gap_timeout
        self._clock = clock
        self._last_id = 0
        self._gaps: dict[int, float] = {}
        self._frames_of: dict[int, list[bytes]] = {}
        self._trimmed_of: dict[int, list[bytes]] = {}
        self._lock = threading.Lock()

    def item_frames(self, item_id: int) -> npt.NDArray[np.uint8] | None:
        """The quality frames of a seen video as posted, ``(n, 32)`` (unique rows)."""
        rows = self._frames_of.get(item_id)
        return unique_frames(rows) if rows else None

    def item_trimmed_frames(self, item_id: int) -> npt.NDArray[np.uint8] | None:
        """The same frames without the video's letterbox bars (None without bars)."""
        rows = self._trimmed_of.get(item_id)
        return unique_frames(rows) if rows else None

    def catch_up(self) -> int:
        """Add seen hashes recorded since the last call; returns how many were added.

        The history is read in blocks of row IDs, each one query answered with
        concatenated columns (no Python object per hash), and added to the
        indexes in one ``add_many`` per index, so a first catch-up over a
        million seen items takes seconds.
        """
        with self._lock:
            high = last_seen_hash(self.engine)
            runs = [(self._last_id + 1, high)] if high > self._last_id else []
            gaps = sorted(self._gaps)
            blocks = list(stream_seen_hashes(self.engine, runs))
            if gaps:
                # Gaps cluster near the top: read them as a few ranges, keep only the gaps.
                wanted = np.array(gaps, dtype=np.int64)
                for blk in stream_seen_hashes(self.engine, _spans(gaps, slack=1000)):
                    keep = np.isin(blk.ids, wanted)
                    if keep.any():
                        blocks.append(
                            SeenBlock(
                                blk.ids[keep],
                                blk.item_ids[keep],
                                blk.frames[keep],
                                blk.trimmed[keep],
                                blk.qualities[keep],
                                blk.hashes[keep],
                            )
                        )
            now = self._clock()
            got = np.concatenate([blk.ids for blk in blocks]) if blocks else np.zeros(0, np.int64)
            for gap in np.intersect1d(got, np.array(gaps, dtype=np.int64)).tolist():
                del self._gaps[gap]
            for gap in [g for g, since in self._gaps.items() if now - since > self.gap_timeout]:
                del self._gaps[gap]
            if runs:
                # IDs handed out but not visible yet belong to transactions still in flight.
                expected = np.arange(self._last_id + 1, high + 1, dtype=np.int64)
                missing = np.setdiff1d(expected, got, assume_unique=True)
                for gap in missing[-_MAX_GAPS:].tolist():
                    self._gaps.setdefault(gap, now)
                if len(self._gaps) > _MAX_GAPS:
                    # Far more holes than transactions in flight: rows deleted with their item.
                    for gap in sorted(self._gaps)[: len(self._gaps) - _MAX_GAPS]:
                        del self._gaps[gap]
                self._last_id = high
            if not blocks:
                return 0
            whole = SeenBlock(
                ids=got,
                item_ids=np.concatenate([blk.item_ids for blk in blocks]),
                frames=np.concatenate([blk.frames for blk in blocks]),
                trimmed=np.concatenate([blk.trimmed for blk in blocks]),
                qualities=np.concatenate([blk.qualities for blk in blocks]),
                hashes=np.concatenate([blk.hashes for blk in blocks]),
            )
            del blocks
            good = whole.qualities >= self.quality_min
            images = good & ~whole.frames
            frames = good & whole.frames
            if images.any():
                self.images.add_many(whole.item_ids[images], whole.hashes[images])
            if frames.any():
                # Both readings go into one frame index (either finds the item); the
                # shares are counted per reading, never mixed.
                items, hashes = whole.item_ids[frames], whole.hashes[frames]
                self.frames.add_many(items, hashes)
                owners = zip(items.tolist(), hashes, whole.trimmed[frames].tolist(), strict=True)
                for item_id, value, trimmed in owners:
                    store = self._trimmed_of if trimmed else self._frames_of
                    store.setdefault(item_id, []).append(value.tobytes())
            return int(good.sum())


def unique_frames(rows: Sequence[bytes]) -> npt.NDArray[np.uint8]:
    """PDQ hashes (32 bytes each) as an ``(n, 32)`` array of unique rows, as vPDQ counts
    frames (an empty input gives ``(0, 32)``)."""
    if not rows:
        return np.zeros((0, 32), dtype=np.uint8)
    return np.unique(np.frombuffer(b"".join(rows), dtype=np.uint8).reshape(-1, 32), axis=0)


# At most this many missing seen-hash row IDs are re-checked on each catch-up.
_MAX_GAPS = 10_000


def _spans(ids: list[int], *, slack: int) -> list[tuple[int, int]]:
    """Sorted ``ids`` as ranges, joining neighbours less than ``slack`` apart."""
    spans: list[tuple[int, int]] = []
    for i in ids:
        if spans and i - spans[-1][1] <= slack:
            spans[-1] = (spans[-1][0], i)
        else:
            spans.append((i, i))
    return spans


def utc_now() -> dt.datetime:
    """Current UTC time (the default clock of matching)."""
    return dt.datetime.now(dt.UTC)
