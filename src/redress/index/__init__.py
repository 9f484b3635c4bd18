"""Index: PDQ hash -> candidate bank entries, exact within a Hamming radius."""

from redress.index.brute import BruteForceIndex
from redress.index.interfaces import IndexHit, PdqIndex
from redress.index.mih import ChunkLayout, IndexStats, MihIndex

__all__ = ["BruteForceIndex", "ChunkLayout", "IndexHit", "IndexStats", "MihIndex", "PdqIndex"]
