"""ORB + RANSAC verification confirms edited copies and rejects different pictures."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageOps

from redress.errors import InvalidInputError
from redress.signals.verify import verify_pictures
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
