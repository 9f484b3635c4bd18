"""MihIndex: exactness against brute force, the radius planner, incremental segments."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from redress.index import BruteForceIndex, ChunkLayout, IndexHit, MihIndex
from redress.index.errors import BadEntryIdError, BadPdqHashError, BadThresholdError
from redress.index.mih import as_pdq_bytes, plan_radii
from redress.signals.types import PdqHash

from .pdq_planting import flip_concentrated, flip_random, flip_spread, random_hashes


def planted_queries(
    stored: np.ndarray, layout: ChunkLayout, rng: np.random.Generator
) -> np.ndarray:
    """Queries at every distance 0..40 from stored hashes, flips random, spread and packed."""
    queries = []
    for distance in range(41):
        base = stored[distance % len(stored)].tobytes()
        queries.append(flip_random(base, distance, rng))
        queries.append(flip_spread(base, distance, layout, rng))
        queries.append(flip_concentrated(base, distance))
    return np.frombuffer(b"".join(queries), np.uint8).reshape(-1, 32)


@pytest.mark.parametrize("size", [1, 2, 50, 3_000, 100_000])
def test_every_threshold_0_to_40_agrees_with_brute_force(size: int) -> None:
    rng = np.random.default_rng(size)
    stored = random_hashes(rng, size)
    ids = rng.integers(0, max(1, size // 2), size).astype(np.int64)
    mih = MihIndex.from_arrays(ids, stored)
    brute = BruteForceIndex()
    brute.add_many(ids, stored)
    queries = np.concatenate(
        [planted_queries(stored, mih._main.layout, rng), random_hashes(rng, 20)]
    )
    # Brute force once at 40; its answer at a lower threshold is the same list, cut.
    widest = brute.search_many(queries, 40)
    for threshold in range(41):
        want = [[h for h in hits if h.distance <= threshold] for hits in widest]
        assert mih.search_many(queries, threshold) == want, threshold


@pytest.mark.parametrize("chunks", [12, 16, 30])
def test_wide_chunk_layouts_agree_with_brute_force(chunks: int) -> None:
    # The 10M-hash layout (12 chunks of 21-22 bits) exercised on a small index.
    rng = np.random.default_rng(chunks)
    stored = random_hashes(rng, 5_000)
    layout = ChunkLayout.even(chunks)
    mih = MihIndex.from_arrays(np.arange(5_000), stored, layout=layout)
    assert mih.stats().chunk_widths == layout.widths
    brute = BruteForceIndex()
    brute.add_many(np.arange(5_000, dtype=np.int64), stored)
    queries = planted_queries(stored, layout, rng)
    widest = brute.search_many(queries, 40)
    for threshold in (0, 1, 7, 15, 23, 31, 32, 39, 40):
        want = [[h for h in hits if h.distance <= threshold] for hits in widest]
        assert mih.search_many(queries, threshold) == want, threshold


def test_planted_neighbours_in_a_dense_index_are_all_found() -> None:
    # Many stored hashes sit at every distance 0..40 from one query.
    rng = np.random.default_rng(11)
    layout = ChunkLayout.for_size(20_000)
    centre = random_hashes(rng, 1)[0].tobytes()
    planted = []
    for distance in range(41):
        planted += [flip_random(centre, distance, rng), flip_spread(centre, distance, layout, rng)]
        planted.append(flip_concentrated(centre, distance))
    stored = np.concatenate(
        [np.frombuffer(b"".join(planted), np.uint8).reshape(-1, 32), random_hashes(rng, 20_000)]
    )
    ids = np.arange(len(stored), dtype=np.int64)
    mih = MihIndex.from_arrays(ids, stored)
    for threshold in range(41):
        hits = mih.search(centre, threshold)
        assert [h.entry_id for h in hits if h.entry_id < len(planted)] == sorted(
            (i for i in range(len(planted)) if i // 3 <= threshold),
            key=lambda i: (i // 3, i),
        )


def test_large_thresholds_fall_back_to_a_scan_and_stay_exact() -> None:
    rng = np.random.default_rng(12)
    stored = random_hashes(rng, 500)
    mih = MihIndex.from_arrays(np.arange(500), stored)
    brute = BruteForceIndex()
    brute.add_many(np.arange(500, dtype=np.int64), stored)
    queries = random_hashes(rng, 5)
    for threshold in (64, 100, 128, 200, 256):
        assert mih.search_many(queries, threshold) == brute.search_many(queries, threshold)
    assert len(mih.search(queries[0].tobytes(), 256)) == 500


@pytest.mark.parametrize("size_class", [1, 10, 20, 24, 30])
def test_planner_always_satisfies_the_pigeonhole_bound(size_class: int) -> None:
    for chunks in (12, 13, 16, 24, 32, 64):
        layout = ChunkLayout.even(chunks)
        assert sum(layout.widths) == 256
        for threshold in range(257):
            radii = plan_radii(layout.widths, size_class, threshold)
            if radii is not None:
                assert sum(r + 1 for r in radii) > threshold
                assert all(-1 <= r <= w for r, w in zip(radii, layout.widths, strict=True))


@pytest.mark.parametrize("chunks", [0, 11, 257])
def test_impossible_layouts_are_refused(chunks: int) -> None:
    with pytest.raises(ValueError, match="chunk"):
        ChunkLayout.even(chunks)


def test_layout_grows_with_the_index() -> None:
    small, large = ChunkLayout.for_size(1_000), ChunkLayout.for_size(10_000_000)
    assert max(large.widths) == 22
    assert len(large.widths) == 12
    assert max(small.widths) < max(large.widths)
    for layout in (small, large):
        assert list(itertools.accumulate((0, *layout.widths[:-1]))) == list(layout.starts)


def test_delta_merges_keep_every_answer() -> None:
    rng = np.random.default_rng(13)
    stored = random_hashes(rng, 2_000)
    mih = MihIndex(delta_limit=100)
    brute = BruteForceIndex()
    for start in range(0, 2_000, 37):
        ids = np.arange(start, min(start + 37, 2_000), dtype=np.int64)
        mih.add_many(ids, stored[ids])
        brute.add_many(ids, stored[ids])
    mih.wait_for_merge()
    assert mih.stats().delta_rows <= 100
    assert mih.stats().main_rows > 1_800
    for e in range(0, 2_000, 7):
        assert mih.remove(e) == brute.remove(e)
    queries = np.stack(
        [np.frombuffer(flip_random(s.tobytes(), 6, rng), np.uint8) for s in stored[:300]]
    )
    assert mih.search_many(queries, 10) == brute.search_many(queries, 10)
    mih.compact()
    stats = mih.stats()
    assert (stats.delta_rows, stats.removed_rows) == (0, 0)
    assert stats.hashes == 2_000 - math.ceil(2_000 / 7)
    assert mih.search_many(queries, 10) == brute.search_many(queries, 10)
    assert len(mih) == len(brute)


def test_remove_many_counts_present_entries() -> None:
    rng = np.random.default_rng(14)
    mih = MihIndex.from_arrays(np.array([1, 1, 2, 3]), random_hashes(rng, 4))
    mih.add(4, [random_hashes(rng, 1)[0].tobytes()])
    assert mih.remove_many([1, 4, 9]) == 2
    assert mih.remove_many(np.array([1, 2], dtype=np.int64)) == 1
    assert len(mih) == 1


def test_inputs_in_any_pdq_form_are_accepted() -> None:
    raw = bytes(range(32))
    assert as_pdq_bytes(raw.hex()) == raw
    assert as_pdq_bytes(PdqHash(raw, 90)) == raw
    assert as_pdq_bytes(np.frombuffer(raw, np.uint8)) == raw
    mih = MihIndex()
    mih.add(3, [raw.hex()])
    assert mih.search(PdqHash(raw), 0) == [IndexHit(0, 3)]


@pytest.mark.parametrize("text", ["xyz", "g" * 64, "0" * 63, "0" * 65])
def test_malformed_hex_is_refused(text: str) -> None:
    with pytest.raises(BadPdqHashError) as info:
        MihIndex().search(text, 31)
    assert info.value.code == "bad_pdq_hash"


def test_bad_bulk_input_is_refused() -> None:
    mih = MihIndex()
    with pytest.raises(BadPdqHashError):
        mih.add_many(np.zeros(2, np.int64), np.zeros((2, 31), np.uint8))
    with pytest.raises(BadEntryIdError):
        mih.add_many(np.zeros(3, np.int64), np.zeros((2, 32), np.uint8))
    with pytest.raises(BadEntryIdError):
        mih.add(2**63, [bytes(32)])
    with pytest.raises(BadThresholdError):
        mih.search(bytes(32), True)
    assert len(mih) == 0


def test_writes_during_a_background_merge_are_kept() -> None:
    rng = np.random.default_rng(15)
    stored = random_hashes(rng, 200_000)
    mih = MihIndex.from_arrays(np.arange(200_000), stored, delta_limit=10)
    brute = BruteForceIndex()
    brute.add_many(np.arange(200_000, dtype=np.int64), stored)
    extra = random_hashes(rng, 40)
    for i in range(11):  # the 11th add starts a background merge
        mih.add(300_000 + i, [extra[i].tobytes()])
        brute.add(300_000 + i, [extra[i].tobytes()])
    # While it runs: remove old main rows, merged delta rows and fresh rows; add more.
    for index in (mih, brute):
        index.remove(5)
        index.remove(300_002)
        index.add(300_020, [extra[20].tobytes()])
        index.remove(300_020)
        index.add(300_021, [extra[21].tobytes()])
        index.add(5, [extra[22].tobytes()])
    queries = np.concatenate([stored[:10], extra[:25]])
    assert mih.search_many(queries, 8) == brute.search_many(queries, 8)
    mih.wait_for_merge()
    assert mih.search_many(queries, 8) == brute.search_many(queries, 8)
    assert mih.stats().main_rows >= 200_000
    assert len(mih) == len(brute)


def test_batches_spread_over_threads_only_when_large_and_answer_the_same(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import redress.index.mih as mih_module

    pools: list[int] = []

    class CountingPool(mih_module.ThreadPoolExecutor):
        def __init__(self, max_workers: int) -> None:
            pools.append(max_workers)
            super().__init__(max_workers=max_workers)

    monkeypatch.setattr(mih_module, "ThreadPoolExecutor", CountingPool)
    rng = np.random.default_rng(12)
    stored = random_hashes(rng, 100_000)
    ids = np.arange(len(stored), dtype=np.int64)
    threaded = MihIndex.from_arrays(ids, stored, threads=4)
    single = MihIndex.from_arrays(ids, stored, threads=1)
    near = [flip_random(stored[n].tobytes(), n % 24, rng) for n in range(0, 2000, 2)]
    queries = np.concatenate(
        [np.frombuffer(b"".join(near), np.uint8).reshape(-1, 32), random_hashes(rng, 1000)]
    )
    pools.clear()  # building the index may use the pool too
    # 100 queries against 100k hashes: cheaper than starting a thread.
    assert threaded.search_many(queries[:100], 31) == single.search_many(queries[:100], 31)
    assert pools == []
    # 2,000 queries: spread over the index's 4 threads, with the same answers.
    assert threaded.search_many(queries, 31) == single.search_many(queries, 31)
    assert pools == [4]
