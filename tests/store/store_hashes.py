"""Random PDQ hashes for the store tests."""

from __future__ import annotations

import random

from redress.signals.types import PdqHash


def random_pdq(rng: random.Random, quality: int = 100) -> PdqHash:
    """A random PDQ hash."""
    return PdqHash(rng.randbytes(32), quality)


def flip(h: PdqHash, bits: int, rng: random.Random | None = None) -> PdqHash:
    """``h`` with ``bits`` distinct bits flipped."""
    rng = rng or random.Random(bits)
    value = int.from_bytes(h.bits, "big")
    for bit in rng.sample(range(256), bits):
        value ^= 1 << bit
    return PdqHash(value.to_bytes(32, "big"), h.quality)
