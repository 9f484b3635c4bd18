"""Conformance suite: every PdqIndex implementation must pass these."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from redress.errors import InvalidInputError
from redress.index import BruteForceIndex, IndexHit, MihIndex, PdqIndex

from .pdq_planting import flip_random, random_hashes

Factory = Callable[[], PdqIndex]

FACTORIES: dict[str, Factory] = {
    "brute": BruteForceIndex,
    "mih": MihIndex,
    # A tiny delta forces merges into the main segment on almost every add.
    "mih-merging": lambda: MihIndex(delta_limit=3),
    "mih-one-thread": lambda: MihIndex(threads=1),
}


def _from_snapshot(folder: Path) -> Factory:
    """A MihIndex loaded from a (memory-mapped) snapshot of a non-empty index."""

    def make() -> PdqIndex:
        path = folder / f"{len(list(folder.iterdir()))}.pdqx"
        seed = MihIndex()
        seed.add(-1, [bytes(32)])
        seed.remove(-1)  # leaves a tombstone in the delta segment
        seed.save(path)
        return MihIndex.load(path, mmap=True)

    return make


@pytest.fixture(params=[*sorted(FACTORIES), "mih-from-snapshot"])
def make_index(request: pytest.FixtureRequest, tmp_path: Path) -> Factory:
    if request.param == "mih-from-snapshot":
        return _from_snapshot(tmp_path)
    return FACTORIES[request.param]


def expected(model: dict[int, list[bytes]], query: bytes, threshold: int) -> list[IndexHit]:
    """What any exact index must answer, computed the slow obvious way."""
    q = int.from_bytes(query, "big")
    hits = []
    for entry, hashes in model.items():
        best = min((q ^ int.from_bytes(h, "big")).bit_count() for h in hashes)
        if best <= threshold:
            hits.append(IndexHit(best, entry))
    return sorted(hits)


def test_is_a_pdq_index(make_index: Factory) -> None:
    index: PdqIndex = make_index()
    assert len(index) == 0


def test_empty_index_answers_nothing(make_index: Factory) -> None:
    index = make_index()
    assert index.search(bytes(32), 256) == []
    assert index.search_many(np.zeros((3, 32), np.uint8), 31) == [[], [], []]
    assert index.search_many(np.zeros((0, 32), np.uint8), 31) == []


def test_one_entry_index_matches(make_index: Factory) -> None:
    # Hasher-Matcher-Actioner's FAISS index never matches when it holds one hash.
    index = make_index()
    query = bytes(range(32))
    index.add(7, [query])
    assert index.search(query, 0) == [IndexHit(0, 7)]
    assert index.search(query, 31) == [IndexHit(0, 7)]
    assert len(index) == 1


def test_radius_is_inclusive_and_best_distance_per_entry_wins(make_index: Factory) -> None:
    rng = np.random.default_rng(1)
    base = random_hashes(rng, 1)[0].tobytes()
    index = make_index()
    index.add(1, [flip_random(base, 31, rng), flip_random(base, 5, rng)])
    index.add(2, [flip_random(base, 32, rng)])
    index.add(3, [flip_random(base, 5, rng)])
    assert index.search(base, 31) == [IndexHit(5, 1), IndexHit(5, 3)]
    assert index.search(base, 32) == [IndexHit(5, 1), IndexHit(5, 3), IndexHit(32, 2)]
    assert index.search(base, 4) == []
    assert len(index) == 3


def test_add_extends_an_entry(make_index: Factory) -> None:
    rng = np.random.default_rng(2)
    a, b = (h.tobytes() for h in random_hashes(rng, 2))
    index = make_index()
    index.add(5, [a])
    index.add(5, [b])
    assert index.search(b, 0) == [IndexHit(0, 5)]
    assert index.search(a, 0) == [IndexHit(0, 5)]
    assert len(index) == 1


def test_remove_takes_every_hash_of_the_entry_away(make_index: Factory) -> None:
    rng = np.random.default_rng(3)
    a, b, c = (h.tobytes() for h in random_hashes(rng, 3))
    index = make_index()
    index.add(1, [a, b])
    index.add(2, [c])
    assert index.remove(1)
    assert index.search(a, 0) == []
    assert index.search(b, 0) == []
    assert index.search(c, 0) == [IndexHit(0, 2)]
    assert not index.remove(1)
    assert len(index) == 1
    index.add(1, [b])  # re-adding after removal brings back only the new hash
    assert index.search(b, 0) == [IndexHit(0, 1)]
    assert index.search(a, 0) == []
    assert len(index) == 2


def test_bulk_add_with_repeated_ids(make_index: Factory) -> None:
    rng = np.random.default_rng(4)
    hashes = random_hashes(rng, 50)
    ids = np.repeat(np.arange(10, dtype=np.int64), 5)
    index = make_index()
    index.add_many(ids, hashes)
    assert len(index) == 10
    found = index.search_many(hashes, 0)
    assert found == [[IndexHit(0, int(e))] for e in ids]


def test_search_many_equals_search(make_index: Factory) -> None:
    rng = np.random.default_rng(5)
    stored = random_hashes(rng, 300)
    index = make_index()
    index.add_many(np.arange(300, dtype=np.int64) % 97, stored)
    queries = np.stack(
        [np.frombuffer(flip_random(stored[i].tobytes(), i % 45, rng), np.uint8) for i in range(120)]
    )
    batch = index.search_many(queries, 40)
    assert batch == [index.search(q.tobytes(), 40) for q in queries]
    assert sum(len(hits) for hits in batch) > 0


def test_random_interleaving_matches_the_model(make_index: Factory) -> None:
    rng = np.random.default_rng(6)
    centre = random_hashes(rng, 1)[0].tobytes()
    index = make_index()
    model: dict[int, list[bytes]] = {}
    for step in range(300):
        action = rng.random()
        entry = int(rng.integers(0, 40))
        if action < 0.55:
            hashes = [
                flip_random(centre, int(rng.integers(0, 60)), rng)
                for _ in range(int(rng.integers(1, 3)))
            ]
            index.add(entry, hashes)
            model.setdefault(entry, []).extend(hashes)
        elif action < 0.85:
            assert index.remove(entry) == (entry in model)
            model.pop(entry, None)
        else:
            threshold = int(rng.integers(0, 64))
            query = flip_random(centre, int(rng.integers(0, 20)), rng)
            assert index.search(query, threshold) == expected(model, query, threshold), step
        assert len(index) == len(model)


@pytest.mark.parametrize("threshold", [-1, 257, 1000])
def test_out_of_range_threshold_is_refused(make_index: Factory, threshold: int) -> None:
    index = make_index()
    with pytest.raises(InvalidInputError) as info:
        index.search(bytes(32), threshold)
    assert info.value.code == "bad_threshold"


@pytest.mark.parametrize("query", [b"", bytes(31), bytes(33)])
def test_wrong_length_hash_is_refused(make_index: Factory, query: bytes) -> None:
    with pytest.raises(InvalidInputError) as info:
        make_index().search(query, 31)
    assert info.value.code == "bad_pdq_hash"


def test_readers_during_writers_see_consistent_results(make_index: Factory) -> None:
    rng = np.random.default_rng(7)
    centre = random_hashes(rng, 1)[0].tobytes()
    index = make_index()
    index.add_many(np.arange(1000, 1500, dtype=np.int64), random_hashes(rng, 500))
    planted = {e: flip_random(centre, e % 30, rng) for e in range(200)}
    errors: list[BaseException] = []
    done = threading.Event()

    def reader() -> None:
        try:
            while not done.is_set():
                for hit in index.search(centre, 31):
                    # Every hit is a planted entry at its true distance.
                    assert hit.entry_id in planted
                    assert hit.distance == hit.entry_id % 30
        except AssertionError as exc:  # reported to the main thread
            errors.append(exc)

    readers = [threading.Thread(target=reader) for _ in range(3)]
    for thread in readers:
        thread.start()
    for entry, bits in planted.items():
        index.add(entry, [bits])
        if entry % 3 == 0:
            index.remove(entry)
    done.set()
    for thread in readers:
        thread.join()
    assert errors == []
    survivors = {e for e in planted if e % 3}
    assert {h.entry_id for h in index.search(centre, 31)} == survivors
    assert len(index) == 500 + len(survivors)
