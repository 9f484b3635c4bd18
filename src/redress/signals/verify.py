"""Local-feature verification: does a scanned picture show a picture Redress holds?

For borderline hash matches where Redress holds the pixels of the protected
picture (content an operator banked from a file on the server), ORB keypoints
are matched between the two and a homography is fitted with RANSAC. Many
geometrically consistent matches mean the scanned picture shows the
protected one: a crop at any position, a screenshot, a rotation, an overlay,
or a larger picture it was cut from; unrelated pictures give few. This needs
OpenCV, installed with the optional extra ``verify`` (``pip install
'redress[verify]'``); without it the functions raise :class:`VerifyUnavailableError`.

The protected side is kept as :class:`LocalFeatures` (keypoint positions and
ORB descriptors, :func:`encode_features` / :func:`decode_features`), never as
pixels. Verification never replaces the hash match: it confirms a near miss,
and a confirmed near miss goes to a reviewer, never to an automatic action.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from redress.errors import ConfigurationError, InvalidInputError
from redress.signals.options import HashOptions
from redress.signals.pdq import RgbArray

# Pictures are compared with their longer side scaled to this many pixels, up or
# down: small pictures give too few keypoints at their own size (a 150-pixel tile
# gave a dozen), and more pixels than this only cost time.
VERIFY_SIDE = 640
ORB_FEATURES = 1500
# Lowe's ratio test: a match counts when clearly better than the runner-up.
RATIO = 0.8
RANSAC_PIXELS = 5.0
# A verdict of "same scene" needs this many RANSAC inliers and this share of the
# ratio-tested matches agreeing with one homography. (Requiring the inliers to
# spread over the protected picture was tried: ORB's keypoints gather on its
# textured parts, so true copies covered as little as 2 % of it.)
MIN_INLIERS = 25
MIN_INLIER_SHARE = 0.3
# A near miss worth verifying: a protected picture whose hash set came within this
# many bits of a match (its best pair's distance minus that pair's threshold).
# Nothing unrelated on the robustness benchmark came this close (nearest: 48
# bits outside), while most free crops, stickers and crop+recompress copies the
# hashes miss are within it.
NEAR_MISS_BITS = 40

# The stored form: magic, version, picture width and height, keypoint count,
# then float32 x, y pairs and 32-byte descriptors.
_MAGIC = b"RDLF"
_VERSION = 1
_HEADER = struct.Struct("<4sBHHI")
_MAX_POINTS = 10_000


class VerifyUnavailableError(ConfigurationError):
    """OpenCV (the ``verify`` extra) is not installed."""

    code = "verify_unavailable"


@dataclass(frozen=True, slots=True)
class Verification:
    """The outcome of a verification.

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


@dataclass(frozen=True, slots=True, eq=False)
class LocalFeatures:
    """ORB keypoints of one picture scaled to :data:`VERIFY_SIDE` on its longer side.

    ``points`` is ``(n, 2)`` float32 (x, y in the scaled picture), ``descriptors``
    ``(n, 32)`` uint8; ``width`` and ``height`` are the scaled picture's size.
    """

    width: int
    height: int
    points: npt.NDArray[np.float32]
    descriptors: npt.NDArray[np.uint8]

    def __len__(self) -> int:
        return len(self.points)

    def __repr__(self) -> str:
        return f"LocalFeatures({self.width}x{self.height}, {len(self)} keypoints)"


class ScannedPicture:
    """The bytes of a scanned image, decoded only if a near miss needs verifying.

    Most scans never need the pixels (no near miss), so the decode is deferred
    and done at most once.
    """

    __slots__ = ("_data", "_options", "_rgb")

    def __init__(self, data: bytes, options: HashOptions) -> None:
        self._data = data
        self._options = options
        self._rgb: RgbArray | None = None

    def __repr__(self) -> str:
        return f"ScannedPicture({len(self._data)} bytes)"

    def rgb(self) -> RgbArray:
        """The picture as a viewer sees it (EXIF orientation applied); raises the
        signals domain's ``HashError`` for bytes it cannot decode."""
        if self._rgb is None:
            from redress.signals.robust import decode_picture

            self._rgb = decode_picture(self._data, self._options)
        return self._rgb


def available() -> bool:
    """Whether OpenCV is installed (verification can run)."""
    try:
        _opencv()
    except VerifyUnavailableError:
        return False
    return True


def local_features(picture: RgbArray) -> LocalFeatures:
    """ORB keypoints and descriptors of a ``(rows, cols, 3)`` uint8 RGB or grey picture."""
    cv2 = _opencv()
    grey = _grey(cv2, picture)
    orb = cv2.ORB_create(nfeatures=ORB_FEATURES)
    keys, descriptors = orb.detectAndCompute(grey, None)
    if descriptors is None or not keys:
        points = np.zeros((0, 2), dtype=np.float32)
        descriptors = np.zeros((0, 32), dtype=np.uint8)
    else:
        points = np.array([k.pt for k in keys], dtype=np.float32).reshape(-1, 2)
    return LocalFeatures(grey.shape[1], grey.shape[0], points, np.ascontiguousarray(descriptors))


def verify_features(protected: LocalFeatures, copy: LocalFeatures) -> Verification:
    """Whether ``copy`` shows the picture ``protected`` was computed from."""
    cv2 = _opencv()
    if len(protected) < 2 or len(copy) < 2:
        return Verification(False, 0, 0)
    matcher = cv2.BFMatcher(cv2.NORM_HAMMING)
    good = [
        pair[0]
        for pair in matcher.knnMatch(protected.descriptors, copy.descriptors, k=2)
        if len(pair) == 2 and pair[0].distance < RATIO * pair[1].distance
    ]
    if len(good) < 4:
        return Verification(False, len(good), 0)
    source = protected.points[[m.queryIdx for m in good]].reshape(-1, 1, 2)
    target = copy.points[[m.trainIdx for m in good]].reshape(-1, 1, 2)
    _, mask = cv2.findHomography(source, target, cv2.RANSAC, RANSAC_PIXELS)
    if mask is None:
        return Verification(False, len(good), 0)
    inliers = int(mask.sum())
    same = inliers >= MIN_INLIERS and inliers >= MIN_INLIER_SHARE * len(good)
    return Verification(same, len(good), inliers)


def verify_copy(protected: LocalFeatures, copy: RgbArray) -> Verification:
    """:func:`verify_features` for a picture in hand, tried mirrored too (ORB is not
    mirror-invariant, and mirrored re-shares are common); the better verdict."""
    first = verify_features(protected, local_features(copy))
    if first.same_scene:
        return first
    mirrored = verify_features(protected, local_features(np.asarray(copy)[:, ::-1]))
    return mirrored if mirrored.same_scene or mirrored.inliers > first.inliers else first


def verify_pictures(first: RgbArray, second: RgbArray) -> Verification:
    """Whether ``second`` shows the same picture as ``first`` (ORB + RANSAC homography).

    Both are ``(rows, cols, 3)`` uint8 RGB or ``(rows, cols)`` grey arrays; a
    mirrored copy is checked against the mirrored original by the caller.
    """
    return verify_features(local_features(first), local_features(second))


def encode_features(features: LocalFeatures) -> bytes:
    """The stored form of ``features`` (what the store keeps for a bank entry)."""
    head = _HEADER.pack(_MAGIC, _VERSION, features.width, features.height, len(features))
    return (
        head
        + features.points.astype("<f4", copy=False).tobytes()
        + features.descriptors.astype(np.uint8, copy=False).tobytes()
    )


def decode_features(data: bytes) -> LocalFeatures:
    """Read :func:`encode_features`'s output; anything else raises ``InvalidInputError``."""
    if len(data) < _HEADER.size:
        raise _bad_features("too short")
    magic, version, width, height, count = _HEADER.unpack_from(data)
    if magic != _MAGIC or version != _VERSION:
        raise _bad_features("not Redress local features of a known version")
    if not 0 < width <= 4 * VERIFY_SIDE or not 0 < height <= 4 * VERIFY_SIDE:
        raise _bad_features("picture size out of range")
    if count > _MAX_POINTS or len(data) != _HEADER.size + count * (8 + 32):
        raise _bad_features("length does not match the keypoint count")
    offset = _HEADER.size
    points = np.frombuffer(data, dtype="<f4", count=count * 2, offset=offset)
    descriptors = np.frombuffer(data, dtype=np.uint8, count=count * 32, offset=offset + count * 8)
    points = points.astype(np.float32).reshape(count, 2)
    if not np.isfinite(points).all():
        raise _bad_features("keypoint positions are not finite")
    return LocalFeatures(width, height, points, descriptors.reshape(count, 32).copy())


def _bad_features(why: str) -> InvalidInputError:
    return InvalidInputError(f"stored local features are unreadable: {why}", code="invalid_input")


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
    if abs(scale - 1) > 0.01:
        size = (max(16, round(cols * scale)), max(16, round(rows * scale)))
        # Area averaging to shrink; bilinear to enlarge (area would just repeat pixels).
        method = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        grey = cv2.resize(grey, size, interpolation=method)
    return np.ascontiguousarray(grey)
