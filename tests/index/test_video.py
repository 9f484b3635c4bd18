"""vPDQ matching: Meta's semantics on constructed frame lists and on Meta's reference hashes."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from redress.index import MihIndex
from redress.index.errors import BadEntryIdError, BadVideoPolicyError
from redress.index.video import (
    FrameHit,
    VideoIndex,
    VideoMatchPolicy,
    compare_videos,
    match_frames_against_images,
    unique_frames,
)
from redress.signals.types import PdqHash

from .pdq_planting import flip_random, random_hashes


def read_vpdq(path: Path) -> list[PdqHash]:
    """Meta's text format: one `frame,quality,pdq_hex,timestamp` line per frame."""
    frames = []
    for line in path.read_text().splitlines():
        _frame, quality, pdq_hex, _ts = line.split(",")
        frames.append(PdqHash.from_hex(pdq_hex, int(quality)))
    return frames


@pytest.fixture(scope="module")
def reference(shared_data: Path) -> dict[str, list[PdqHash]]:
    folder = shared_data / "vpdq" / "hashes"
    return {p.stem: read_vpdq(p) for p in sorted(folder.glob("*.txt"))}


@pytest.fixture(scope="module")
def bank(reference: dict[str, list[PdqHash]]) -> tuple[VideoIndex, list[str]]:
    names = sorted(reference)
    index = VideoIndex()
    for number, name in enumerate(names):
        assert index.add_video(number, reference[name]) > 0
    return index, names


def matched_names(bank: tuple[VideoIndex, list[str]], frames: list[PdqHash]) -> set[str]:
    index, names = bank
    return {names[m.video_id] for m in index.match(frames)}


CHAIR_VARIANTS = [
    "chair-19-sd-bar", "chair-20-sd-bar", "chair-22-sd-grey-bar", "chair-22-sd-sepia-bar",
    "chair-22-with-small-logo-bar", "chair-orig-22-sd-bar",
]  # fmt: skip


def test_chair_variants_match_each_other(
    reference: dict[str, list[PdqHash]], bank: tuple[VideoIndex, list[str]]
) -> None:
    expected = set(CHAIR_VARIANTS) | {f"{n}-128x128" for n in CHAIR_VARIANTS}
    for name in expected:
        assert expected <= matched_names(bank, reference[name]), name


def test_pattern_variants_match_each_other(
    reference: dict[str, list[PdqHash]], bank: tuple[VideoIndex, list[str]]
) -> None:
    groups = [
        ["pattern-hd-no-bar", "pattern-longer-no-bar"],
        ["pattern-sd-grey-bar", "pattern-sd-with-small-logo-bar"],
        ["pattern-sd-with-large-logo-bar"],
    ]
    for group in groups:
        expected = set(group) | {f"{n}-128x128" for n in group}
        for name in expected:
            assert expected <= matched_names(bank, reference[name]), name


def test_different_source_clips_never_match(
    reference: dict[str, list[PdqHash]], bank: tuple[VideoIndex, list[str]]
) -> None:
    for name, frames in reference.items():
        family = name.split("-")[0]
        others = {n for n in matched_names(bank, frames) if n.split("-")[0] != family}
        assert others == set(), name


def test_frame_index_agrees_with_the_brute_force_matcher(
    reference: dict[str, list[PdqHash]], bank: tuple[VideoIndex, list[str]]
) -> None:
    index, names = bank
    for name in ["chair-19-sd-bar", "pattern-longer-no-bar", "doorknob-hd-no-bar-128x128"]:
        found = {m.video_id: m.comparison for m in index.compare(reference[name])}
        for number, other in enumerate(names):
            direct = compare_videos(reference[name], reference[other])
            if direct.query_matched:
                assert found[number] == direct, (name, other)
            else:
                assert number not in found


def test_short_clip_inside_a_long_video(reference: dict[str, list[PdqHash]]) -> None:
    long_video = reference["chair-19-sd-bar"]
    clip = long_video[: len(long_video) // 4]
    index = VideoIndex()
    index.add_video(1, long_video)
    (as_query,) = index.match(clip)  # the clip's share is the query share
    assert as_query.video_id == 1
    assert as_query.query_share == 1.0
    assert as_query.compared_share < 0.5
    clips = VideoIndex()
    clips.add_video(2, clip)
    assert clips.match(long_video) == []  # the long video's own share is small...
    (inside,) = clips.match_clips_within(long_video)  # ...but the bank clip is all there
    assert (inside.video_id, inside.compared_share, inside.is_match) == (2, 1.0, True)
    assert inside.query_share < 0.5


def test_image_cross_matches_video_frames(
    reference: dict[str, list[PdqHash]], bank: tuple[VideoIndex, list[str]]
) -> None:
    index, names = bank
    still = reference["chair-20-sd-bar"][40]
    found = index.match_image(still, 31)
    assert found
    assert found[0].distance == 0
    assert {names[h.entry_id].split("-")[0] for h in found} == {"chair"}
    assert all(isinstance(h, FrameHit) and h.frames_matched >= 1 for h in found)
    images = MihIndex()
    images.add(100, [still])
    images.add(200, [reference["pattern-hd-no-bar"][10]])
    in_chair = match_frames_against_images(images, reference["chair-22-sd-grey-bar"])
    assert [h.entry_id for h in in_chair] == [100]
    assert in_chair[0].frames_matched >= 1


def test_shares_count_unique_good_frames_only() -> None:
    rng = np.random.default_rng(1)
    a, b, c, d, e = (h.tobytes() for h in random_hashes(rng, 5))
    query = [(a, 100), (a, 100), (b, 90), (c, 49), (d, 80), (e, 70)]  # c is below quality 50
    assert len(unique_frames(query)) == 4
    compared = [(a, 100), (flip_random(b, 31, rng), 100), (flip_random(d, 32, rng), 100)]
    result = compare_videos(query, compared)
    # a and b have partners (b at exactly 31 bits); d is 32 bits away; e has none.
    assert (result.query_frames, result.query_matched) == (4, 2)
    assert (result.compared_frames, result.compared_matched) == (3, 2)
    assert result.best_distance == 0
    index = VideoIndex()
    index.add_video(9, compared)
    (found,) = index.compare(query)
    assert found.comparison == result
    assert not found.is_match  # 2 of 4 is below 80%


def test_eighty_percent_is_the_boundary() -> None:
    rng = np.random.default_rng(2)
    frames = [h.tobytes() for h in random_hashes(rng, 10)]
    index = VideoIndex()
    index.add_video(5, [(f, 100) for f in frames])
    strangers = [h.tobytes() for h in random_hashes(rng, 3)]
    eight_of_ten = [(f, 100) for f in frames[:8] + strangers[:2]]
    seven_of_ten = [(f, 100) for f in frames[:7] + strangers[:3]]
    assert [m.video_id for m in index.match(eight_of_ten)] == [5]
    assert index.match(seven_of_ten) == []
    relaxed = VideoMatchPolicy(query_share_min=0.7)
    assert [m.video_id for m in index.match(seven_of_ten, relaxed)] == [5]
    strict = VideoMatchPolicy(compared_share_min=0.9)
    assert index.match(eight_of_ten, strict) == []


def test_videos_can_be_replaced_and_removed() -> None:
    rng = np.random.default_rng(3)
    first, second = ([(h.tobytes(), 100) for h in random_hashes(rng, 6)] for _ in range(2))
    index = VideoIndex()
    index.add_video(1, first)
    index.add_video(1, second)  # replaces
    assert index.match(first) == []
    assert [m.video_id for m in index.match(second)] == [1]
    assert index.remove_video(1)
    assert not index.remove_video(1)
    assert index.match(second) == []
    assert index.add_video(2, [(first[0][0], 10)]) == 0  # nothing usable: nothing indexed
    assert len(index) == 0


def test_video_index_survives_a_snapshot(
    tmp_path: Path, reference: dict[str, list[PdqHash]], bank: tuple[VideoIndex, list[str]]
) -> None:
    index, _ = bank
    path = tmp_path / "frames.pdqx"
    index.save(path)
    loaded = VideoIndex.load(path)
    assert len(loaded) == len(index)
    for name in ("chair-19-sd-bar", "pattern-sd-grey-bar"):
        assert loaded.compare(reference[name]) == index.compare(reference[name])


def test_bad_policies_and_ids_are_refused() -> None:
    with pytest.raises(BadVideoPolicyError):
        VideoMatchPolicy(query_share_min=80)
    with pytest.raises(BadVideoPolicyError):
        VideoMatchPolicy(quality_min=101)
    with pytest.raises(BadEntryIdError):
        VideoIndex().add_video(-1, [])
    assert VideoIndex().match([]) == []
    assert compare_videos([], []).query_share == 0.0


def test_reference_pairs_are_symmetric_in_brute_force(reference: dict[str, list[PdqHash]]) -> None:
    for left, right in itertools.combinations(
        ["chair-19-sd-bar", "chair-20-sd-bar", "pattern-hd-no-bar"], 2
    ):
        ab = compare_videos(reference[left], reference[right])
        ba = compare_videos(reference[right], reference[left])
        assert (ab.query_matched, ab.compared_matched) == (ba.compared_matched, ba.query_matched)
