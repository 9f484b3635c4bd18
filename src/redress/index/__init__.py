"""Index: PDQ hash -> candidate bank entries, exact within a Hamming radius."""

from redress.index.brute import BruteForceIndex
from redress.index.interfaces import IndexHit, PdqIndex
from redress.index.robust import RobustHit, RobustIndex

__all__ = ["BruteForceIndex", "IndexHit", "PdqIndex", "RobustHit", "RobustIndex"]
