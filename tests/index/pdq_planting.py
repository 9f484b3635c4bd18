"""Planting near-duplicates for the index tests: random hashes and exact bit flips."""

from __future__ import annotations

import numpy as np

from redress.index.mih import ChunkLayout


def random_hashes(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.integers(0, 256, (n, 32), dtype=np.uint8)


def flip_positions(bits: bytes, positions: list[int] | np.ndarray) -> bytes:
    """Flip the given bit positions (layout of docs/index.md: little-endian 64-bit words)."""
    arr = bytearray(bits)
    for p in positions:
        arr[int(p) // 8] ^= 1 << (int(p) % 8)
    return bytes(arr)


def flip_random(bits: bytes, n: int, rng: np.random.Generator) -> bytes:
    return flip_positions(bits, rng.choice(256, size=n, replace=False))


def flip_spread(bits: bytes, n: int, layout: ChunkLayout, rng: np.random.Generator) -> bytes:
    """Flip ``n`` bits spread as evenly as possible over the chunks: the pigeonhole's edge."""
    per_chunk = [
        n // len(layout.widths) + (1 if i < n % len(layout.widths) else 0)
        for i in range(len(layout.widths))
    ]
    positions: list[int] = []
    for start, width, k in zip(layout.starts, layout.widths, per_chunk, strict=True):
        positions += [start + int(p) for p in rng.choice(width, size=min(k, width), replace=False)]
    return flip_positions(bits, positions)


def flip_concentrated(bits: bytes, n: int) -> bytes:
    """Flip the first ``n`` bits: all differences packed into the first chunks."""
    return flip_positions(bits, list(range(n)))
