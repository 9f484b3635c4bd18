"""ORB + RANSAC verification confirms edited copies and rejects different pictures."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from PIL import Image, ImageOps

from redress.errors import InvalidInputError
from redress.signals.verify import (
    LocalFeatures,
    decode_features,
    encode_features,
    local_features,
    verify_copy,
    verify_features,
    verify_pictures,
)
from signals.test_robust import EDITS, jpeg_round_trip, photo_like

pytest.importorskip("cv2")


@pytest.fixture(scope="module")
def original() -> Image.Image:
    return photo_like(7, size=(800, 600))


@pytest.mark.parametrize(
    "edit", ["crop off the top 12%", "phone screenshot, dark", "meme captions", "rotated 5 degrees"]
)
def test_edited_copies_are_verified_as_the_same_scene(edit: str, original: Image.Image) -> None:
    copy = jpeg_round_trip(EDITS[edit](original))
    verdict = verify_pictures(np.asarray(original), copy)
    assert verdict.same_scene, verdict
    assert verdict.inliers >= 25


def test_a_free_crop_plain_hashing_misses_is_verified(original: Image.Image) -> None:
    # An off-grid crop at a new aspect: no hash window meets it, local features do.
    copy = jpeg_round_trip(original.crop((57, 23, 731, 541)))
    assert verify_pictures(np.asarray(original), copy).same_scene


def test_different_pictures_are_not_verified(original: Image.Image) -> None:
    for seed in (40, 41, 42):
        other = jpeg_round_trip(photo_like(seed, size=(800, 600)))
        verdict = verify_pictures(np.asarray(original), other)
        assert not verdict.same_scene, verdict


def test_flat_pictures_are_not_verified(original: Image.Image) -> None:
    flat = np.full((400, 400, 3), 200, dtype=np.uint8)
    assert not verify_pictures(np.asarray(original), flat).same_scene
    assert not verify_pictures(flat, flat).same_scene


def test_mirrored_copy_is_verified_against_the_mirrored_original(original: Image.Image) -> None:
    mirrored = jpeg_round_trip(ImageOps.mirror(original))
    assert verify_pictures(np.asarray(ImageOps.mirror(original)), mirrored).same_scene


def test_bad_arrays_are_refused() -> None:
    with pytest.raises(InvalidInputError):
        verify_pictures(np.zeros((8, 8, 3), dtype=np.uint8), np.zeros((64, 64, 3), dtype=np.uint8))
    with pytest.raises(InvalidInputError):
        verify_pictures(np.zeros((64, 64, 3), dtype=np.float32), np.zeros((64, 64, 3), np.uint8))


def test_a_small_tile_cropped_anywhere_is_verified_from_stored_features() -> None:
    # A 180-pixel picture gives a few dozen keypoints at its own size; scaled up to
    # the working size it gives enough for a verdict. Only the features are kept.
    small = photo_like(11, size=(180, 150))
    stored = decode_features(encode_features(local_features(np.asarray(small))))
    copy = jpeg_round_trip(small.crop((14, 9, 171, 140)))
    verdict = verify_copy(stored, copy)
    assert verdict.same_scene, verdict
    assert not verify_copy(stored, jpeg_round_trip(photo_like(12, size=(180, 150)))).same_scene


def test_verify_copy_finds_a_mirrored_copy(original: Image.Image) -> None:
    stored = local_features(np.asarray(original))
    mirrored = jpeg_round_trip(ImageOps.mirror(original.crop((40, 30, 760, 560))))
    assert not verify_features(stored, local_features(mirrored)).same_scene
    assert verify_copy(stored, mirrored).same_scene


def test_stored_features_round_trip_exactly(original: Image.Image) -> None:
    features = local_features(np.asarray(original))
    again = decode_features(encode_features(features))
    assert (again.width, again.height) == (features.width, features.height) == (640, 480)
    assert np.array_equal(again.points, features.points)
    assert np.array_equal(again.descriptors, features.descriptors)
    assert len(again) >= 25


@pytest.mark.parametrize(
    "mutate",
    [
        lambda b: b[:10],
        lambda b: b"XXXX" + b[4:],
        lambda b: b[:4] + b"\x09" + b[5:],
        lambda b: b[:-1],
        lambda b: b + b"\x00" * 40,
        lambda b: b[:5] + b"\x00\x00" + b[7:],
    ],
    ids=["truncated header", "magic", "version", "short", "long", "zero width"],
)
def test_damaged_stored_features_are_refused(original: Image.Image, mutate: Any) -> None:
    data = encode_features(local_features(np.asarray(original)))
    with pytest.raises(InvalidInputError, match="stored local features are unreadable"):
        decode_features(mutate(data))


def test_non_finite_keypoints_are_refused() -> None:
    features = LocalFeatures(
        64, 64, np.array([[np.nan, 1.0]], dtype=np.float32), np.zeros((1, 32), dtype=np.uint8)
    )
    with pytest.raises(InvalidInputError, match="not finite"):
        decode_features(encode_features(features))
