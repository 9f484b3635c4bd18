"""RFC 6962 / RFC 9162 Merkle tree math over the ledger.

Hashes: leaf = SHA-256(0x00 || entry), node = SHA-256(0x01 || left || right);
a tree of n leaves splits at k, the largest power of two smaller than n.

Storage model (why this is fast at a million entries): every *perfect*
subtree (2**level leaves, aligned) is hashed once, when its last leaf arrives,
and stored as node ``(level, index)``; those never change. The root of any
tree size, and every hash an inclusion or consistency proof needs, is then a
combination of O(log n) stored nodes. Appending keeps a *frontier* (the roots
of the perfect subtrees that cover the log, largest first: one per set bit of
the size), so an append costs one leaf hash plus, amortised, one node hash.

Proof generation follows RFC 6962 section 2.1 (PATH, PROOF/SUBPROOF);
verification follows RFC 9162 sections 2.1.3.2 and 2.1.4.2.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

HASH_SIZE = 32

NodeLookup = Callable[[int, int], bytes]
"""``lookup(level, index)``: the stored hash of perfect subtree ``index`` at ``level``."""


def leaf_hash(entry: bytes) -> bytes:
    """RFC 6962 leaf hash of one ledger entry's canonical bytes."""
    return hashlib.sha256(b"\x00" + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 6962 interior node hash."""
    return hashlib.sha256(b"\x01" + left + right).digest()


EMPTY_ROOT = hashlib.sha256(b"").digest()
"""Root of the empty tree (RFC 6962: the hash of the empty string)."""


def _split(n: int) -> int:
    """Largest power of two strictly smaller than ``n`` (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


@dataclass(frozen=True)
class Frontier:
    """The compact range [0, size): perfect-subtree roots, largest first."""

    size: int
    hashes: tuple[bytes, ...]

    @staticmethod
    def empty() -> Frontier:
        """The frontier of an empty log."""
        return Frontier(0, ())

    def levels(self) -> list[int]:
        """The level of each hash: the set bits of ``size``, highest first."""
        return [bit for bit in range(self.size.bit_length() - 1, -1, -1) if self.size >> bit & 1]

    def root(self) -> bytes:
        """Merkle tree hash of the whole log (folding the frontier right to left)."""
        if not self.hashes:
            return EMPTY_ROOT
        acc = self.hashes[-1]
        for left in reversed(self.hashes[:-1]):
            acc = node_hash(left, acc)
        return acc

    def append(self, leaf: bytes) -> tuple[Frontier, list[tuple[int, int, bytes]]]:
        """Add one leaf; return the new frontier and the nodes it completed.

        The completed nodes are ``(level, index, hash)`` including the leaf at
        level 0; they are what the store must persist (the ledger keeps level 0
        beside its entry).
        """
        stack = list(self.hashes)
        levels = self.levels()
        new_nodes = [(0, self.size, leaf)]
        current, level = leaf, 0
        position = self.size  # index of the new leaf
        while levels and levels[-1] == level:
            levels.pop()
            left = stack.pop()
            current = node_hash(left, current)
            level += 1
            position >>= 1
            new_nodes.append((level, position, current))
        stack.append(current)
        return Frontier(self.size + 1, tuple(stack)), new_nodes

    def to_bytes(self) -> bytes:
        """Concatenated hashes (the levels follow from ``size``)."""
        return b"".join(self.hashes)

    @staticmethod
    def from_bytes(size: int, data: bytes) -> Frontier:
        """Inverse of :meth:`to_bytes`."""
        count = size.bit_count()
        if len(data) != count * HASH_SIZE:
            raise ValueError(f"frontier of size {size} needs {count} hashes, got {len(data)} bytes")
        return Frontier(
            size, tuple(data[i * HASH_SIZE : (i + 1) * HASH_SIZE] for i in range(count))
        )


class TreeReader:
    """Computes roots and proofs for any tree size from stored perfect-subtree nodes."""

    def __init__(self, lookup: NodeLookup) -> None:
        self._lookup = lookup
        self._cache: dict[tuple[int, int], bytes] = {}

    def subtree_root(self, start: int, end: int) -> bytes:
        """MTH(D[start:end]) for a range that RFC 6962's recursion can produce."""
        n = end - start
        if n <= 0:
            return EMPTY_ROOT
        if n & (n - 1) == 0 and start % n == 0:
            level = n.bit_length() - 1
            key = (level, start >> level)
            cached = self._cache.get(key)
            if cached is None:
                cached = self._lookup(level, start >> level)
                self._cache[key] = cached
            return cached
        k = _split(n)
        return node_hash(self.subtree_root(start, start + k), self.subtree_root(start + k, end))

    def root(self, size: int) -> bytes:
        """Root of the tree made of the first ``size`` entries."""
        return self.subtree_root(0, size)

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        """RFC 6962 PATH(index, D[0:size]), leaf side first."""
        if not 0 <= index < size:
            raise ValueError(f"leaf {index} is not in a tree of size {size}")
        return self._path(index, 0, size)

    def _path(self, m: int, start: int, end: int) -> list[bytes]:
        n = end - start
        if n == 1:
            return []
        k = _split(n)
        if m < k:
            return [*self._path(m, start, start + k), self.subtree_root(start + k, end)]
        return [*self._path(m - k, start + k, end), self.subtree_root(start, start + k)]

    def consistency_proof(self, old_size: int, new_size: int) -> list[bytes]:
        """RFC 6962 PROOF(old_size, D[0:new_size])."""
        if not 0 < old_size <= new_size:
            raise ValueError(f"no consistency proof from size {old_size} to {new_size}")
        return self._subproof(old_size, 0, new_size, True)

    def _subproof(self, m: int, start: int, end: int, complete: bool) -> list[bytes]:
        n = end - start
        if m == n:
            return [] if complete else [self.subtree_root(start, end)]
        k = _split(n)
        if m <= k:
            return [
                *self._subproof(m, start, start + k, complete),
                self.subtree_root(start + k, end),
            ]
        return [*self._subproof(m - k, start + k, end, False), self.subtree_root(start, start + k)]


def verify_inclusion(
    leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> bool:
    """RFC 9162 2.1.3.2: does ``proof`` place ``leaf`` at ``index`` in the tree ``root``?"""
    if index >= size or index < 0:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while not (fn & 1 or fn == 0):
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> bool:
    """RFC 9162 2.1.4.2: is the tree ``new_root`` an append-only extension of ``old_root``?"""
    if old_size <= 0 or old_size > new_size:
        return False
    if old_size == new_size:
        return not proof and old_root == new_root
    path = list(proof)
    if old_size & (old_size - 1) == 0:
        path.insert(0, old_root)
    if not path:
        return False
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while not (fn & 1 or fn == 0):
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == old_root and sr == new_root
