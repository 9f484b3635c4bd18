"""The index package's public surface is pinned."""

from __future__ import annotations

import redress.index


def test_public_names_are_pinned() -> None:
    assert redress.index.__all__ == [
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
    for name in redress.index.__all__:
        assert getattr(redress.index, name) is not None
