"""Snapshots: round trip, and no crash or corruption ever loses the previous one."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from redress.index import IndexHit, MihIndex
from redress.index import snapshot as snapshot_format
from redress.index.errors import (
    SnapshotCorruptError,
    SnapshotError,
    SnapshotNotFoundError,
    SnapshotVersionError,
)

from .pdq_planting import flip_random, random_hashes


def populated(rng: np.random.Generator) -> tuple[MihIndex, np.ndarray]:
    stored = random_hashes(rng, 3_000)
    index = MihIndex.from_arrays(np.arange(3_000) // 2, stored, delta_limit=1_000)
    index.add(9_000, [stored[0].tobytes()])  # in the delta segment
    index.remove(7)  # a tombstone in the main segment
    index.add(9_001, [stored[1].tobytes()])
    index.remove(9_001)  # and one in the delta
    queries = np.stack(
        [np.frombuffer(flip_random(h.tobytes(), 9, rng), np.uint8) for h in stored[:200]]
    )
    return index, queries


@pytest.mark.parametrize("mmap", [False, True])
def test_round_trip_answers_the_same(tmp_path: Path, mmap: bool) -> None:
    rng = np.random.default_rng(1)
    index, queries = populated(rng)
    path = tmp_path / "bank.pdqx"
    index.save(path)
    loaded = MihIndex.load(path, mmap=mmap)
    assert loaded.search_many(queries, 31) == index.search_many(queries, 31)
    assert len(loaded) == len(index) == 1_500
    assert loaded.stats() == index.stats()
    # A loaded index keeps taking writes, even when its arrays map the file.
    assert loaded.remove(0)
    loaded.add(5, [queries[0].tobytes()])
    assert loaded.search(queries[0].tobytes(), 0)[0].entry_id == 5
    # stored[0] belonged to entry 0 (removed) and entry 9000 (still there).
    assert [h.entry_id for h in loaded.search(queries[0].tobytes(), 31)] == [5, 9000]


def test_empty_index_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "empty.pdqx"
    MihIndex().save(path)
    loaded = MihIndex.load(path)
    assert len(loaded) == 0
    assert loaded.search(bytes(32), 256) == []


def test_truncated_snapshot_is_refused(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    index, _ = populated(rng)
    path = tmp_path / "bank.pdqx"
    index.save(path)
    data = path.read_bytes()
    for cut in (0, 10, 100, len(data) // 2, len(data) - 1):
        path.write_bytes(data[:cut])
        with pytest.raises(SnapshotCorruptError):
            MihIndex.load(path)


def test_flipped_byte_is_caught_by_checksums(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    index, _ = populated(rng)
    path = tmp_path / "bank.pdqx"
    index.save(path)
    data = bytearray(path.read_bytes())
    header = snapshot_format.read_header(path)
    for section in header["sections"]:
        if section["nbytes"] == 0:
            continue
        spoiled = bytearray(data)
        spoiled[section["offset"] + section["nbytes"] // 2] ^= 0x10
        path.write_bytes(spoiled)
        with pytest.raises(SnapshotCorruptError, match=section["name"]):
            MihIndex.load(path)
    spoiled = bytearray(data)
    spoiled[40] ^= 0x01  # inside the JSON header
    path.write_bytes(spoiled)
    with pytest.raises(SnapshotCorruptError, match="header"):
        MihIndex.load(path)


def test_other_files_and_versions_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "bank.pdqx"
    with pytest.raises(SnapshotNotFoundError):
        MihIndex.load(path)
    path.write_bytes(b"not an index at all, just some text")
    with pytest.raises(SnapshotCorruptError, match="magic"):
        MihIndex.load(path)
    MihIndex().save(path)
    data = bytearray(path.read_bytes())
    data[8] = 99  # format version
    path.write_bytes(data)
    with pytest.raises(SnapshotVersionError) as info:
        MihIndex.load(path)
    assert info.value.code == "snapshot_version"


@pytest.mark.parametrize("failing", ["fsync", "replace", "write"])
def test_failed_save_keeps_the_previous_snapshot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failing: str
) -> None:
    rng = np.random.default_rng(4)
    index, _ = populated(rng)
    path = tmp_path / "bank.pdqx"
    index.save(path)
    before = path.read_bytes()
    index.add_many(np.arange(50_000, 50_500), random_hashes(rng, 500))

    def fail(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    if failing == "write":
        # The disk fills up half way through the arrays.
        monkeypatch.setattr(snapshot_format, "_pad", fail)
    else:
        monkeypatch.setattr(os, failing, fail)
    with pytest.raises(SnapshotError, match="No space left"):
        index.save(path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bank.pdqx"]  # no temp files left
    assert len(MihIndex.load(path)) == 1_500


def test_crash_mid_save_leaves_old_snapshot_loadable(tmp_path: Path) -> None:
    # A crash leaves a half-written temp file beside the snapshot; the snapshot still loads.
    rng = np.random.default_rng(5)
    index, queries = populated(rng)
    path = tmp_path / "bank.pdqx"
    index.save(path)
    (tmp_path / ".bank.pdqx.123.dead.tmp").write_bytes(path.read_bytes()[:5000])
    assert MihIndex.load(path).search_many(queries, 31) == index.search_many(queries, 31)


def test_a_mapped_index_can_save_over_its_own_file(tmp_path: Path) -> None:
    rng = np.random.default_rng(6)
    index, queries = populated(rng)
    path = tmp_path / "bank.pdqx"
    index.save(path)
    mapped = MihIndex.load(path)  # memory-mapped by default
    mapped.remove(1)
    mapped.add(77, [queries[5].tobytes()])
    mapped.save(path)  # a new file renamed over the mapped one
    assert mapped.search(queries[5].tobytes(), 0) == [IndexHit(0, 77)]
    reloaded = MihIndex.load(path, mmap=False)
    assert reloaded.search_many(queries, 31) == mapped.search_many(queries, 31)
    mapped.compact()  # rebuilds from the mapped arrays into private memory
    assert mapped.search_many(queries, 31) == reloaded.search_many(queries, 31)
