"""Index: PDQ hash -> candidate bank entries, exact within a Hamming radius.

``MihIndex`` is the fast exact index (multi-index hashing, C inner loop,
snapshots); ``BruteForceIndex`` the reference it is tested against; both are
``PdqIndex``es. ``RobustIndex`` searches robust hash sets (docs/robustness.md)
over them. ``VideoIndex`` matches vPDQ videos with Meta's semantics.
"""

from redress.index.brute import BruteForceIndex
from redress.index.interfaces import IndexHit, PdqIndex
from redress.index.mih import ChunkLayout, IndexStats, MihIndex
from redress.index.robust import RobustHit, RobustIndex
from redress.index.video import (
    FrameHit,
    VideoComparison,
    VideoIndex,
    VideoMatch,
    VideoMatchPolicy,
    compare_videos,
    match_frames_against_images,
    unique_frames,
)

__all__ = [
    "BruteForceIndex",
    "ChunkLayout",
    "FrameHit",
    "IndexHit",
    "IndexStats",
    "MihIndex",
    "PdqIndex",
    "RobustHit",
    "RobustIndex",
    "VideoComparison",
    "VideoIndex",
    "VideoMatch",
    "VideoMatchPolicy",
    "compare_videos",
    "match_frames_against_images",
    "unique_frames",
]
