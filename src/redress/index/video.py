"""vPDQ video matching with Meta's semantics, over a frame index.

Meta's rule (threatexchange ``vpdq_index``/``vpdq_brute_matcher``): take each
video's *unique* frame hashes with quality >= 50; a frame of one video matches
if some frame of the other is within the distance threshold (31); the *query
share* is the fraction of the query's unique frames that match, the *compared
share* the fraction of the bank video's unique frames that match; the videos
match when the query share is >= 80% (and the compared share >= 0%).

:class:`VideoIndex` stores every unique frame of every bank video in one
:class:`~redress.index.mih.MihIndex` (frame entry ID = ``video_id << 20 |
frame number``), so matching looks each query frame up once instead of
comparing against every video. The same index answers three more questions:
a short clip inside a long bank video (the clip's share is the query share),
bank clips inside a long query video (the compared share), and a single image
against all video frames. :func:`match_frames_against_images` is the reverse
cross-match: a video's frames against an image :class:`PdqIndex`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from redress.index.errors import BadEntryIdError, BadPdqHashError, BadVideoPolicyError
from redress.index.interfaces import PdqIndex
from redress.index.mih import MihIndex, as_pdq_bytes, check_threshold
from redress.signals.types import PdqHash

FRAME_BITS = 20  # frame numbers per video: up to 1,048,575 unique frames
MAX_VIDEO_ID = 2 ** (63 - FRAME_BITS) - 1


@runtime_checkable
class FrameLike(Protocol):
    """Anything with a PDQ hash and a quality, such as the signals domain's vPDQ frame."""

    @property
    def pdq(self) -> PdqHash:
        """The frame's PDQ hash."""
        ...

    @property
    def quality(self) -> int:
        """PDQ's quality score for the frame (0-100)."""
        ...


Frame = PdqHash | FrameLike | tuple[bytes | str, int]


@dataclass(frozen=True, slots=True)
class VideoMatchPolicy:
    """When two videos match: Meta's defaults (31 bits, quality >= 50, query share >= 80%)."""

    threshold: int = 31
    quality_min: int = 50
    query_share_min: float = 0.8
    compared_share_min: float = 0.0

    def __post_init__(self) -> None:
        check_threshold(self.threshold)
        if not 0 <= self.quality_min <= 100:
            raise BadVideoPolicyError(f"quality_min is 0-100; got {self.quality_min}")
        for name in ("query_share_min", "compared_share_min"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise BadVideoPolicyError(f"{name} is a share between 0 and 1; got {value}")


@dataclass(frozen=True, slots=True)
class VideoComparison:
    """How two videos' unique usable frames match each other."""

    query_frames: int
    query_matched: int
    compared_frames: int
    compared_matched: int
    best_distance: int | None

    @property
    def query_share(self) -> float:
        """Share of the query's unique frames with a partner in the compared video."""
        return self.query_matched / self.query_frames if self.query_frames else 0.0

    @property
    def compared_share(self) -> float:
        """Share of the compared video's unique frames with a partner in the query."""
        return self.compared_matched / self.compared_frames if self.compared_frames else 0.0

    def matches(self, policy: VideoMatchPolicy) -> bool:
        """Meta's decision: both shares at or above the policy's minimums, something matched."""
        return (
            self.query_matched > 0
            and self.query_share >= policy.query_share_min
            and self.compared_share >= policy.compared_share_min
        )


@dataclass(frozen=True, slots=True)
class VideoMatch:
    """A bank video that shares frames with the query, with both shares."""

    video_id: int
    comparison: VideoComparison
    is_match: bool

    @property
    def query_share(self) -> float:
        """Share of the query's unique frames found in this video."""
        return self.comparison.query_share

    @property
    def compared_share(self) -> float:
        """Share of this video's unique frames found in the query."""
        return self.comparison.compared_share


@dataclass(frozen=True, slots=True)
class FrameHit:
    """A bank entry (an image, or a video) matched by some frames: how many, how close."""

    entry_id: int
    distance: int
    frames_matched: int


def _frame_parts(frame: Frame) -> tuple[bytes, int]:
    if isinstance(frame, PdqHash):
        return frame.bits, frame.quality
    if isinstance(frame, tuple) and len(frame) == 2:
        bits, quality = frame
        return as_pdq_bytes(bits), int(quality)
    if isinstance(frame, FrameLike):
        return frame.pdq.bits, int(frame.quality)
    raise BadPdqHashError(
        f"a video frame is a PdqHash, (hash, quality) or a vPDQ frame; got {type(frame).__name__}"
    )


def unique_frames(frames: Iterable[Frame], quality_min: int = 50) -> npt.NDArray[np.uint8]:
    """The distinct frame hashes with quality >= ``quality_min``, first occurrence first."""
    seen: dict[bytes, None] = {}
    for frame in frames:
        bits, quality = _frame_parts(frame)
        if quality >= quality_min:
            seen.setdefault(bits, None)
    return np.frombuffer(b"".join(seen), dtype=np.uint8).reshape(-1, 32).copy()


def _distances(a: npt.NDArray[np.uint8], b: npt.NDArray[np.uint8]) -> npt.NDArray[np.int64]:
    """All pairwise Hamming distances, shape (len(a), len(b))."""
    wa = a.view(np.uint64).reshape(len(a), 1, 4)
    wb = b.view(np.uint64).reshape(1, len(b), 4)
    found: npt.NDArray[np.int64] = np.bitwise_count(wa ^ wb).sum(axis=2, dtype=np.int64)
    return found


def compare_videos(
    query: Iterable[Frame], compared: Iterable[Frame], policy: VideoMatchPolicy | None = None
) -> VideoComparison:
    """Compare two videos directly (Meta's brute-force matcher, vectorised)."""
    rule = policy or VideoMatchPolicy()
    q = unique_frames(query, rule.quality_min)
    c = unique_frames(compared, rule.quality_min)
    if not len(q) or not len(c):
        return VideoComparison(len(q), 0, len(c), 0, None)
    close = _distances(q, c)
    within = close <= rule.threshold
    return VideoComparison(
        query_frames=len(q),
        query_matched=int(within.any(axis=1).sum()),
        compared_frames=len(c),
        compared_matched=int(within.any(axis=0).sum()),
        best_distance=int(close.min()) if within.any() else None,
    )


class VideoIndex:
    """Bank videos' unique frames in one exact frame index, matched with Meta's semantics."""

    def __init__(self, frames: MihIndex | None = None, *, quality_min: int = 50) -> None:
        self._frames = frames if frames is not None else MihIndex()
        self._quality_min = quality_min
        self._frame_counts: dict[int, int] = {}
        if frames is not None:
            live = frames.live_entry_ids()
            videos, counts = np.unique(live >> FRAME_BITS, return_counts=True)
            self._frame_counts = dict(zip(videos.tolist(), counts.tolist(), strict=True))

    @property
    def frame_index(self) -> MihIndex:
        """The underlying frame index (entry ID = ``video_id << 20 | frame number``)."""
        return self._frames

    def add_video(self, video_id: int, frames: Iterable[Frame]) -> int:
        """Index a bank video's unique usable frames; returns how many (0: nothing to match)."""
        if isinstance(video_id, bool) or not 0 <= int(video_id) <= MAX_VIDEO_ID:
            raise BadEntryIdError(f"a video ID is 0-{MAX_VIDEO_ID}; got {video_id}")
        rows = unique_frames(frames, self._quality_min)
        if len(rows) >= 2**FRAME_BITS:
            raise BadEntryIdError(f"a video holds fewer than {2**FRAME_BITS} unique frames")
        self.remove_video(video_id)
        if not len(rows):
            return 0
        ids = (int(video_id) << FRAME_BITS) + np.arange(len(rows), dtype=np.int64)
        self._frames.add_many(ids, rows)
        self._frame_counts[int(video_id)] = len(rows)
        return len(rows)

    def remove_video(self, video_id: int) -> bool:
        """Remove a video's frames; True if it was indexed."""
        count = self._frame_counts.pop(int(video_id), 0)
        if not count:
            return False
        ids = (int(video_id) << FRAME_BITS) + np.arange(count, dtype=np.int64)
        self._frames.remove_many(ids)
        return True

    def __len__(self) -> int:
        """Number of indexed videos."""
        return len(self._frame_counts)

    def compare(
        self, frames: Iterable[Frame], policy: VideoMatchPolicy | None = None
    ) -> list[VideoMatch]:
        """Every bank video sharing at least one frame with the query, best query share first."""
        rule = policy or VideoMatchPolicy()
        query = unique_frames(frames, rule.quality_min)
        if not len(query):
            return []
        per_frame = self._frames.search_many(query, rule.threshold)
        query_hits: dict[int, set[int]] = {}
        bank_hits: dict[int, set[int]] = {}
        best: dict[int, int] = {}
        for qi, hits in enumerate(per_frame):
            for hit in hits:
                video = hit.entry_id >> FRAME_BITS
                query_hits.setdefault(video, set()).add(qi)
                bank_hits.setdefault(video, set()).add(hit.entry_id)
                best[video] = min(best.get(video, hit.distance), hit.distance)
        found = []
        for video, matched in query_hits.items():
            comparison = VideoComparison(
                query_frames=len(query),
                query_matched=len(matched),
                compared_frames=self._frame_counts[video],
                compared_matched=len(bank_hits[video]),
                best_distance=best[video],
            )
            found.append(VideoMatch(video, comparison, comparison.matches(rule)))
        found.sort(key=lambda m: (-m.query_share, -m.compared_share, m.video_id))
        return found

    def match(
        self, frames: Iterable[Frame], policy: VideoMatchPolicy | None = None
    ) -> list[VideoMatch]:
        """Bank videos the query matches under ``policy`` (Meta: query share >= 80%).

        A short query clip found inside a long bank video matches here too: the
        query share is the clip's share.
        """
        return [m for m in self.compare(frames, policy) if m.is_match]

    def match_clips_within(
        self, frames: Iterable[Frame], policy: VideoMatchPolicy | None = None
    ) -> list[VideoMatch]:
        """Bank videos (clips) found inside a longer query: compared share >= query_share_min.

        The query share of a long query is small by nature, so the decision here
        uses the bank clip's share instead; ``is_match`` reports that decision.
        """
        rule = policy or VideoMatchPolicy()
        found = []
        for m in self.compare(frames, rule):
            inside = m.compared_share >= rule.query_share_min
            if inside:
                found.append(VideoMatch(m.video_id, m.comparison, True))
        found.sort(key=lambda m: (-m.compared_share, m.video_id))
        return found

    def match_image(self, image: bytes | str | PdqHash, threshold: int = 31) -> list[FrameHit]:
        """Videos with a frame within ``threshold`` of one image, nearest first."""
        hits = self._frames.search(image, check_threshold(threshold))
        per_video: dict[int, tuple[int, int]] = {}
        for hit in hits:
            video = hit.entry_id >> FRAME_BITS
            distance, count = per_video.get(video, (hit.distance, 0))
            per_video[video] = (min(distance, hit.distance), count + 1)
        return sorted(
            (FrameHit(v, d, n) for v, (d, n) in per_video.items()),
            key=lambda h: (h.distance, -h.frames_matched, h.entry_id),
        )

    def save(self, path: str | os.PathLike[str]) -> None:
        """Snapshot the frame index (the video table is derived from its entry IDs)."""
        self._frames.save(path)

    @classmethod
    def load(
        cls, path: str | os.PathLike[str], *, mmap: bool = True, quality_min: int = 50
    ) -> VideoIndex:
        """Load a snapshot written by :meth:`save`."""
        return cls(MihIndex.load(path, mmap=mmap), quality_min=quality_min)


def match_frames_against_images(
    images: PdqIndex,
    frames: Sequence[Frame],
    threshold: int = 31,
    quality_min: int = 50,
) -> list[FrameHit]:
    """Image bank entries found in any usable frame of a video, nearest first."""
    query = unique_frames(frames, quality_min)
    if not len(query):
        return []
    per_entry: dict[int, tuple[int, int]] = {}
    for hits in images.search_many(query, check_threshold(threshold)):
        for hit in hits:
            distance, count = per_entry.get(hit.entry_id, (hit.distance, 0))
            per_entry[hit.entry_id] = (min(distance, hit.distance), count + 1)
    return sorted(
        (FrameHit(e, d, n) for e, (d, n) in per_entry.items()),
        key=lambda h: (h.distance, -h.frames_matched, h.entry_id),
    )
