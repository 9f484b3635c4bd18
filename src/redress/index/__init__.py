"""Index: PDQ hash -> candidate bank entries, exact within a Hamming radius."""

from redress.index.brute import BruteForceIndex
from redress.index.interfaces import IndexHit, PdqIndex

__all__ = ["BruteForceIndex", "IndexHit", "PdqIndex"]
