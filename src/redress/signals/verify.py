"""Local-feature verification: do two pictures Redress holds show the same scene?

For borderline hash matches where Redress has the pixels of both pictures
(confirmed content, captured evidence), ORB keypoints are matched between
them and a homography is fitted with RANSAC. Many geometrically consistent
matches mean the second picture is a crop, screenshot, rotation or overlay
of the first; unrelated pictures give few. This needs OpenCV, installed with
the optional extra ``verify`` (``pip install 'redress[verify]'``); without it
:func:`verify_pictures` raises :class:`VerifyUnavailableError`.

Verification never replaces the hash match: it confirms or rejects one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from redress.errors import ConfigurationError, InvalidInputError
from redress.signals.pdq import RgbArray

# Pictures are compared with their longer side scaled to this many pixels:
# enough keypoints for a photo, cheap enough for a reviewer's queue.
VERIFY_SIDE = 640
ORB_FEATURES = 1500
# Lowe's ratio test: a match counts when clearly better than the runner-up.
RATIO = 0.8
RANSAC_PIXELS = 5.0
# A verdict of "same scene" needs this many RANSAC inliers and this share of
# the ratio-tested matches to agree with one homography.
MIN_INLIERS = 25
MIN_INLIER_SHARE = 0.3


class VerifyUnavailableError(ConfigurationError):
    """OpenCV (the ``verify`` extra) is not installed."""

    code = "verify_unavailable"


@dataclass(frozen=True, slots=True)
class Verification:
    """The outcome of :func:`verify_pictures`.

    ``matches`` passed the ratio test, ``inliers`` agree with the fitted
    homography; ``same_scene`` is the verdict.
    """

    same_scene: bool
    matches: int
    inliers: int

    @property
    def inlier_share(self) -> float:
        """Share of the ratio-tested matches that agree with the homography."""
        return self.inliers / self.matches if self.matches else 0.0


def verify_pictures(first: RgbArray, second: RgbArray) -> Verification:
    """Whether ``second`` shows the same scene as ``first`` (ORB + RANSAC homography).

    Both are ``(rows, cols, 3)`` uint8 RGB or ``(rows, cols)`` grey arrays.
    """
    cv2 = _opencv()
    grey_first = _grey(cv2, first)
    grey_second = _grey(cv2, second)
    orb = cv2.ORB_create(nfeatures=ORB_FEATURES)
    keys_first, desc_first = orb.detectAndCompute(grey_first, None)
    keys_second, desc_second = orb.detectAndCompute(grey_second, None)
    if desc_first is None or desc_second is None or len(keys_first) < 2 or len(keys_second) < 2:
        return Verification(False, 0, 0)
    matcher = cv2.BFMatcher(cv2.NORM_HAMMING)
    good = [
        pair[0]
        for pair in matcher.knnMatch(desc_first, desc_second, k=2)
        if len(pair) == 2 and pair[0].distance < RATIO * pair[1].distance
    ]
    if len(good) < 4:
        return Verification(False, len(good), 0)
    source = np.array([keys_first[m.queryIdx].pt for m in good], dtype=np.float32).reshape(-1, 1, 2)
    target = np.array([keys_second[m.trainIdx].pt for m in good], dtype=np.float32).reshape(
        -1, 1, 2
    )
    _, mask = cv2.findHomography(source, target, cv2.RANSAC, RANSAC_PIXELS)
    inliers = int(mask.sum()) if mask is not None else 0
    same = inliers >= MIN_INLIERS and inliers >= MIN_INLIER_SHARE * len(good)
    return Verification(same, len(good), inliers)


def _opencv() -> Any:
    try:
        import cv2
    except ImportError as exc:
        raise VerifyUnavailableError(
            "local-feature verification needs OpenCV: pip install 'redress[verify]'"
        ) from exc
    return cv2


def _grey(cv2: Any, picture: RgbArray) -> Any:
    array = np.asarray(picture)
    if array.dtype != np.uint8 or array.ndim not in (2, 3) or min(array.shape[:2]) < 16:
        raise InvalidInputError(
            "verification needs uint8 RGB or grey pictures at least 16 pixels a side",
            code="invalid_input",
        )
    grey = (
        array
        if array.ndim == 2
        else cv2.cvtColor(np.ascontiguousarray(array[:, :, :3]), cv2.COLOR_RGB2GRAY)
    )
    rows, cols = grey.shape
    scale = VERIFY_SIDE / max(rows, cols)
    if scale < 1:
        grey = cv2.resize(
            grey, (round(cols * scale), round(rows * scale)), interpolation=cv2.INTER_AREA
        )
    return np.ascontiguousarray(grey)
