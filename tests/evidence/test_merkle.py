"""Merkle math against a straightforward transcription of RFC 6962 section 2.1."""

from __future__ import annotations

import hashlib

import pytest

from redress.evidence import verify as offline
from redress.evidence.merkle import (
    EMPTY_ROOT,
    Frontier,
    TreeReader,
    leaf_hash,
    verify_consistency,
    verify_inclusion,
)

# -- the reference: RFC 6962 MTH, PATH and PROOF, written as plainly as the RFC ---------------


def _k(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def mth(d: list[bytes]) -> bytes:
    if not d:
        return hashlib.sha256(b"").digest()
    if len(d) == 1:
        return hashlib.sha256(b"\x00" + d[0]).digest()
    k = _k(len(d))
    return hashlib.sha256(b"\x01" + mth(d[:k]) + mth(d[k:])).digest()


def path(m: int, d: list[bytes]) -> list[bytes]:
    if len(d) == 1:
        return []
    k = _k(len(d))
    if m < k:
        return [*path(m, d[:k]), mth(d[k:])]
    return [*path(m - k, d[k:]), mth(d[:k])]


def subproof(m: int, d: list[bytes], b: bool) -> list[bytes]:
    n = len(d)
    if m == n:
        return [] if b else [mth(d)]
    k = _k(n)
    if m <= k:
        return [*subproof(m, d[:k], b), mth(d[k:])]
    return [*subproof(m - k, d[k:], False), mth(d[:k])]


def proof(m: int, d: list[bytes]) -> list[bytes]:
    return subproof(m, d, True)


# -- a tree built through the frontier and stored nodes, as the ledger does ----------------------


def build(entries: list[bytes]) -> tuple[Frontier, dict[tuple[int, int], bytes]]:
    frontier = Frontier.empty()
    nodes: dict[tuple[int, int], bytes] = {}
    for entry in entries:
        frontier, completed = frontier.append(leaf_hash(entry))
        for level, index, value in completed:
            assert (level, index) not in nodes
            nodes[(level, index)] = value
    return frontier, nodes


ENTRIES = [f"entry {i}".encode() for i in range(70)]
FRONTIER, NODES = build(ENTRIES)
READER = TreeReader(lambda level, index: NODES[(level, index)])


def test_empty_tree_root_is_hash_of_nothing() -> None:
    assert Frontier.empty().root() == EMPTY_ROOT == mth([])


@pytest.mark.parametrize("size", range(1, 71))
def test_roots_match_rfc_mth(size: int) -> None:
    assert READER.root(size) == mth(ENTRIES[:size])
    assert build(ENTRIES[:size])[0].root() == mth(ENTRIES[:size])


@pytest.mark.parametrize("size", [1, 2, 3, 5, 7, 8, 9, 16, 17, 31, 64, 70])
def test_inclusion_proofs_match_rfc_path_and_verify(size: int) -> None:
    root = mth(ENTRIES[:size])
    for m in range(size):
        ours = READER.inclusion_proof(m, size)
        assert ours == path(m, ENTRIES[:size])
        leaf = leaf_hash(ENTRIES[m])
        assert verify_inclusion(leaf, m, size, ours, root)
        assert offline.verify_inclusion(leaf, m, size, ours, root)
        assert offline.inclusion_proof_length(m, size) == len(ours)
        # A wrong leaf, a wrong index or a truncated proof all fail.
        assert not verify_inclusion(leaf_hash(b"other"), m, size, ours, root)
        if size > 1:
            assert not verify_inclusion(leaf, (m + 1) % size, size, ours, root)
            assert not offline.verify_inclusion(leaf, m, size, ours[:-1], root)


@pytest.mark.parametrize("new", [1, 2, 3, 4, 5, 7, 8, 9, 13, 16, 17, 33, 70])
def test_consistency_proofs_match_rfc_proof_and_verify(new: int) -> None:
    new_root = mth(ENTRIES[:new])
    for old in range(1, new + 1):
        ours = READER.consistency_proof(old, new)
        assert ours == proof(old, ENTRIES[:new])
        old_root = mth(ENTRIES[:old])
        assert verify_consistency(old, new, old_root, new_root, ours)
        assert offline.verify_consistency(old, new, old_root, new_root, ours)
        forged_old = mth([b"rewritten", *ENTRIES[1:old]])
        assert not verify_consistency(old, new, forged_old, new_root, ours)
        assert not offline.verify_consistency(old, new, forged_old, new_root, ours)


def test_consistency_refuses_shrinking_or_empty_trees() -> None:
    root = mth(ENTRIES[:5])
    assert not verify_consistency(6, 5, root, root, [])
    assert not verify_consistency(0, 5, root, root, [])
    with pytest.raises(ValueError, match="no consistency proof"):
        READER.consistency_proof(6, 5)


def test_frontier_round_trips_through_bytes() -> None:
    again = Frontier.from_bytes(FRONTIER.size, FRONTIER.to_bytes())
    assert again == FRONTIER
    with pytest.raises(ValueError, match="needs"):
        Frontier.from_bytes(FRONTIER.size + 1, FRONTIER.to_bytes())


def test_each_append_stores_few_nodes() -> None:
    # Amortised two nodes per leaf (the leaf and, on average, one interior node).
    assert len(NODES) < 2 * len(ENTRIES)
