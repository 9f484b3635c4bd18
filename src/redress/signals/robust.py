"""Robust matching: hash sets that find crops, borders, screenshots, memes and flips.

Plain PDQ (one hash per picture, distance <= 31) misses most re-shared copies:
a 10 % crop, a padded border, a phone screenshot or a meme caption moves every
DCT coefficient. Redress therefore hashes *both* sides more than once:

- the **reference set** of a protected picture (:func:`reference_hash_set`):
  its eight dihedral hashes (rotations and flips), a fixed set of crops given
  as fractions of width and height, and four small rotations (+-5 degrees,
  same size and expanded). docs/robustness.md
  defines the set precisely, so that the portal's JavaScript can compute the
  same hashes on a victim's device.
- the **query set** of a scanned picture (:func:`query_hash_set`): the picture
  as posted, the picture with uniform borders and letterbox bars trimmed, the
  photo-like rectangle found inside screenshots, meme templates and padded
  canvases (:func:`content_regions`), a central window of the normalised
  picture (which meets the reference's rotated windows), windows between
  the reference's crop samples, the picture without each edge's quarter
  strip, and halves. Every window is hashed from a luma plane by PDQ's
  banded map (:func:`~redress.signals.pdq.pdq_of_window`), so the set costs
  a few times one plain PDQ, not one PDQ per window.

Every derived hash carries its own threshold; a pair matches when its distance
is within the smaller of the two thresholds (:func:`match_sets`). Derived hashes
whose PDQ quality is under 50, or that come from tiny or extreme-aspect windows,
are never produced, so flat or degenerate inputs cannot make confident matches.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from PIL import Image

from redress.errors import InvalidInputError
from redress.signals import _pdq
from redress.signals.options import HashOptions
from redress.signals.pdq import (
    LumaArray,
    RgbArray,
    box_resize,
    load_rgb,
    open_image,
    pdq_from_rgb,
    pdq_of_window,
)
from redress.signals.sniff import MediaFormat, sniff
from redress.signals.types import PdqHash

# Plain PDQ's threshold (StopNCII, Hasher-Matcher-Actioner).
PLAIN_THRESHOLD = 31
# Every derived hash must be at least this good (Meta's own PDQ quality floor).
QUALITY_MIN = 50
# Derived hashes are computed on the picture scaled so its longer side is at
# most this many pixels: PDQ reduces any picture to 64x64 first, so nothing it
# sees is lost, and the query side stays cheap.
WORK_SIDE = 384
# A window smaller than this (in source pixels) or more elongated than this
# ratio is not hashed: PDQ of a sliver or a thumbnail is not evidence.
MIN_WINDOW_SIDE = 64
# A scanned JPEG is decoded reduced, but never below this on its shorter side.
QUERY_DECODE_SIDE = WORK_SIDE
MAX_ASPECT = 3.0

# The reference set's thresholds. The dihedral hashes keep plain PDQ's 31
# (they are the hashes StopNCII and HMA exchange); crops and rotations are
# many extra chances per original, so each gets a tighter radius.
DIHEDRAL_THRESHOLD = 31
CROP_THRESHOLD = 28
ROTATION_THRESHOLD = 28
# A half holds half the picture's detail, so two different pictures' halves
# are closer than their wholes: a tighter radius still.
HALF_THRESHOLD = 26
# The query set's thresholds: the posted picture as is keeps 31; windows found
# by normalisation are guesses, so they are held to a tighter radius.
QUERY_WHOLE_THRESHOLD = 31
QUERY_NORMALISED_THRESHOLD = 31
QUERY_CENTRE_THRESHOLD = 28

# Border trimming: a line is part of a border when at most this share of its
# pixels differ by more than BORDER_TOLERANCE (0-255, any channel) from the
# border's colour; JPEG noise stays well inside that.
BORDER_TOLERANCE = 24
BORDER_OUTLIERS = 0.03
# Content-region detection works on the picture scaled to this longer side.
REGION_SIDE = 160
REGION_TOLERANCE = 28
# A UI background is one exact colour (JPEG moves it a level or two on the
# small copy), while a dark photo on a dark theme differs from it by less than
# REGION_TOLERANCE: tighter searches find it. A night-sky or low-light photo
# on a near-black theme sits only 3-12 levels from the background, so the
# tightest (faint) search sits just above the JPEG shift.
REGION_FAINT_TOLERANCE = 3
REGION_TOLERANCES = (REGION_TOLERANCE, 8, REGION_FAINT_TOLERANCE)
REGION_FILL = 0.5  # also the C search's (_pdq.dense_rectangle) "at least half"
# A region must cover at least this share of the picture and differ from the
# whole picture by at least REGION_MIN_CHANGE of a side to be worth a hash.
REGION_MIN_AREA = 0.12
REGION_MIN_CHANGE = 0.02
# At most this share of the pixels outside a region may be content.
REGION_OUTSIDE_CONTENT = 0.6
# The central window every query and reference hashes (side fraction).
CENTRE_SIDE = 0.78
# Overlays (stickers, emoji) drawn over a picture: flat, saturated, compact blobs
# of one colour. Natural photographs seldom have such a blob; a sticker on one
# moves the whole picture's hash 30-90 bits, and the picture with the blob
# covered by its surroundings' mean comes back within the plain threshold.
OVERLAY_SATURATION = 0.45  # (max - min) / max of the channels
OVERLAY_MIN_VALUE = 110  # brightest channel, levels
OVERLAY_FLAT = 24  # largest step to the next pixel right or below, levels
OVERLAY_COLOUR_TOLERANCE = 24  # levels from the blob's mean colour
OVERLAY_AREA = (0.004, 0.12)  # of the picture, the blob's bounding box
OVERLAY_FILL = 0.5  # of the bounding box the blob covers (a disc covers 0.79)
OVERLAY_MAX_ASPECT = 2.0
OVERLAY_MARGIN = 0.08  # of the blob's side, for its outline and antialiasing
OVERLAY_MAX = 2
OVERLAY_COLOURS = 16  # colour bins tried, most common first
ROTATION_DEGREES = (-5.0, 5.0)

DIHEDRAL_ORDER = (
    "original",
    "rotate90",
    "rotate180",
    "rotate270",
    "flipx",
    "flipy",
    "flipplus1",
    "flipminus1",
)


@dataclass(frozen=True, slots=True)
class Window:
    """A rectangle inside a picture, as fractions of its width and height."""

    left: float
    top: float
    width: float
    height: float

    def pixels(self, width: int, height: int) -> tuple[int, int, int, int]:
        """The window in pixels of a ``width`` x ``height`` picture: (left, top, right, bottom)."""
        left = round(self.left * width)
        top = round(self.top * height)
        right = max(left + 1, min(width, round((self.left + self.width) * width)))
        bottom = max(top + 1, min(height, round((self.top + self.height) * height)))
        return left, top, right, bottom


_MARGIN = (1 - CENTRE_SIDE) / 2
CENTRE = Window(_MARGIN, _MARGIN, CENTRE_SIDE, CENTRE_SIDE)

# The reference set's crop windows, named; docs/robustness.md lists them.
# PDQ tolerates about 1 % of the side in crop position or scale (on the
# benchmark's originals a 1 % shift moves a window's hash a median 30 bits),
# so each one-parameter family is sampled every 3-3.5 % and the query's own
# windows, 1.75 % and 3.5 % in from each anchor, fill in between.
CENTRAL_SIDES = (0.97, 0.94, 0.91, 0.88, 0.85, 0.82, 0.79)
EDGE_CUTS = (0.07, 0.105, 0.14, 0.175, 0.21, 0.245)
CORNER_CUTS = (0.04, 0.08, 0.12, 0.16)
# Halves of the picture: a sticker, an emoji or a caption written over the
# picture moves the whole picture's hash 30-90 bits, but it usually covers
# only one half (or one side of each split), and the other half's hash is
# untouched. Both sides hash the same halves, of the normalised picture on
# the query side.
HALVES: tuple[tuple[str, Window], ...] = (
    ("half-top", Window(0.0, 0.0, 1.0, 0.5)),
    ("half-bottom", Window(0.0, 0.5, 1.0, 0.5)),
    ("half-left", Window(0.0, 0.0, 0.5, 1.0)),
    ("half-right", Window(0.5, 0.0, 0.5, 1.0)),
)


def _reference_crops() -> tuple[tuple[str, Window], ...]:
    crops: list[tuple[str, Window]] = []
    for side in CENTRAL_SIDES:
        margin = (1 - side) / 2
        crops.append((f"central{round(side * 100)}", Window(margin, margin, side, side)))
    for cut in EDGE_CUTS:
        keep = 1 - cut
        label = round(cut * 1000)
        crops.append((f"cut-top{label}", Window(0.0, cut, 1.0, keep)))
        crops.append((f"cut-bottom{label}", Window(0.0, 0.0, 1.0, keep)))
        crops.append((f"cut-left{label}", Window(cut, 0.0, keep, 1.0)))
        crops.append((f"cut-right{label}", Window(0.0, 0.0, keep, 1.0)))
    for cut in CORNER_CUTS:
        keep = 1 - cut
        label = round(cut * 1000)
        crops.append((f"keep-topleft{label}", Window(0.0, 0.0, keep, keep)))
        crops.append((f"keep-topright{label}", Window(cut, 0.0, keep, keep)))
        crops.append((f"keep-bottomleft{label}", Window(0.0, cut, keep, keep)))
        crops.append((f"keep-bottomright{label}", Window(cut, cut, keep, keep)))
    return tuple(crops)


REFERENCE_CROPS = _reference_crops()
_CROP_KINDS = frozenset(name for name, _ in REFERENCE_CROPS)
_HALF_KINDS = frozenset(name for name, _ in HALVES)
_ROTATION_KINDS = frozenset(
    f"rotate{degrees:+.0f}{suffix}" for degrees in ROTATION_DEGREES for suffix in ("", "-expanded")
)


def _shifted_windows(prefix: str, cut: float) -> tuple[tuple[str, Window], ...]:
    """The picture less ``cut`` of its side at each corner and each edge (eight windows)."""
    keep = 1 - cut
    return (
        (f"{prefix}-topleft", Window(0.0, 0.0, keep, keep)),
        (f"{prefix}-topright", Window(cut, 0.0, keep, keep)),
        (f"{prefix}-bottomleft", Window(0.0, cut, keep, keep)),
        (f"{prefix}-bottomright", Window(cut, cut, keep, keep)),
        (f"{prefix}-top", Window(0.0, cut, 1.0, keep)),
        (f"{prefix}-bottom", Window(0.0, 0.0, 1.0, keep)),
        (f"{prefix}-left", Window(cut, 0.0, keep, 1.0)),
        (f"{prefix}-right", Window(0.0, 0.0, keep, 1.0)),
    )


_REFINE_CUT = 0.035
REFINE_WINDOWS = _shifted_windows("refine", _REFINE_CUT)
_STEP_CUT = _REFINE_CUT / 2
STEP_WINDOWS = _shifted_windows("step", _STEP_CUT)
# Two windows closer than this on every edge are one (quarter-steps only).
STEP_DISTINCT = _STEP_CUT / 2
_STRIP_CUT = EDGE_CUTS[-1]
STRIP_WINDOWS: tuple[tuple[str, Window], ...] = (
    ("without-top", Window(0.0, _STRIP_CUT, 1.0, 1 - _STRIP_CUT)),
    ("without-bottom", Window(0.0, 0.0, 1.0, 1 - _STRIP_CUT)),
    ("without-left", Window(_STRIP_CUT, 0.0, 1 - _STRIP_CUT, 1.0)),
    ("without-right", Window(0.0, 0.0, 1 - _STRIP_CUT, 1.0)),
)


def reference_kinds() -> tuple[str, ...]:
    """Every kind a reference set may hold, in the set's order (docs/robustness.md)."""
    dihedral = tuple(f"dihedral/{name}" for name in DIHEDRAL_ORDER)
    crops = tuple(name for name, _ in REFERENCE_CROPS)
    halves = tuple(name for name, _ in HALVES)
    rotations = tuple(
        f"rotate{degrees:+.0f}{'-expanded' if expand else ''}"
        for degrees in ROTATION_DEGREES
        for expand in (False, True)
    )
    return dihedral + crops + halves + rotations


def reference_threshold(kind: str) -> int:
    """The match radius of a reference hash of ``kind``; unknown kinds are refused.

    A stored or submitted reference set carries its kinds, not its thresholds,
    so a radius can only ever be one this module chose.
    """
    if kind.startswith("dihedral/") and kind.removeprefix("dihedral/") in DIHEDRAL_ORDER:
        return DIHEDRAL_THRESHOLD
    if kind in _HALF_KINDS:
        return HALF_THRESHOLD
    if kind in _CROP_KINDS:
        return CROP_THRESHOLD
    if kind in _ROTATION_KINDS:
        return ROTATION_THRESHOLD
    raise InvalidInputError(f"unknown reference hash kind {kind!r}", code="invalid_input")


def reference_from_members(
    kinds: Sequence[str], hashes: Sequence[PdqHash]
) -> tuple[DerivedHash, ...]:
    """A stored reference set again, from its kinds and member hashes (same order)."""
    if len(kinds) != len(hashes):
        raise InvalidInputError(
            f"a reference set has {len(kinds)} kinds but {len(hashes)} hashes",
            code="invalid_input",
        )
    return tuple(
        DerivedHash(kind, pdq, reference_threshold(kind))
        for kind, pdq in zip(kinds, hashes, strict=True)
    )


class HashRole(enum.StrEnum):
    """Which side of a match a derived hash belongs to."""

    REFERENCE = "reference"
    QUERY = "query"


@dataclass(frozen=True, slots=True)
class DerivedHash:
    """One hash of a picture's hash set: what it is of, the hash, and its match radius.

    ``kind`` names the derivation (``dihedral/original``, ``crop86-3``,
    ``rotate+5``, ``whole``, ``trimmed``, ``region``, ``centre``); ``threshold``
    is the largest distance at which this hash may match.
    """

    kind: str
    pdq: PdqHash
    threshold: int

    @property
    def quality(self) -> int:
        """PDQ's quality score of this hash (0-100)."""
        return self.pdq.quality


@dataclass(frozen=True, slots=True)
class PairMatch:
    """The closest matching pair between a reference set and a query set."""

    reference_kind: str
    query_kind: str
    distance: int
    threshold: int


@dataclass(frozen=True, slots=True)
class SetMatch:
    """The verdict of :func:`match_sets`: matched or not, with the deciding pair."""

    matched: bool
    best: PairMatch | None
    # The smallest (distance - radius) over all pairs: <= 0 when matched; how near a
    # miss came otherwise (``None`` when either set is empty).
    margin: int | None = None

    @property
    def distance(self) -> int | None:
        """The deciding pair's distance (``None`` when either set is empty)."""
        return None if self.best is None else self.best.distance


# ---------------------------------------------------------------- decoding


def decode_picture(data: bytes, options: HashOptions) -> RgbArray:
    """Decode image bytes into the RGB picture a viewer shows (EXIF orientation applied).

    Raises the signals domain's :class:`~redress.signals.errors.HashError`
    subclasses for empty, corrupt, unsupported or oversized input.
    """
    from redress.signals.errors import EmptyFileError, UnsupportedMediaError
    from redress.signals.sniff import SNIFF_BYTES

    if not data:
        raise EmptyFileError("the file is empty")
    fmt = sniff(data[:SNIFF_BYTES])
    if fmt.kind != "image":
        raise UnsupportedMediaError(f"robust hash sets are for still images; got {fmt.name}")
    decoded = open_image(data, fmt, options.max_image_pixels)
    return load_rgb(decoded, fmt, compat_hma=False)


def decode_for_query(data: bytes, fmt: MediaFormat, options: HashOptions) -> RgbArray:
    """Decode a scanned image for its query set, reduced in the JPEG decoder where it can be.

    The query set hashes windows of the picture scaled to 384 pixels, so a
    JPEG is decoded at the smallest DCT scale that keeps both sides at least
    :data:`QUERY_DECODE_SIDE` pixels: a photo found in a tall screenshot still
    has its full detail at that scale (a third of a 1080 x 2160 screenshot
    decoded at half scale is 540 x 360). The ``whole`` hash is then the
    scan's own fast PDQ (``query_hash_set(..., whole=)``).
    """
    decoded = open_image(data, fmt, options.max_image_pixels)
    if fmt.is_jpeg:
        decoded.image.draft("RGB", (QUERY_DECODE_SIDE, QUERY_DECODE_SIDE))
    return load_rgb(decoded, fmt, compat_hma=False)


def work_picture(rgb: RgbArray, side: int = WORK_SIDE) -> RgbArray:
    """The picture scaled (box filter) so its longer side is at most ``side`` pixels."""
    rows, cols = rgb.shape[:2]
    longest = max(rows, cols)
    if longest <= side:
        return rgb
    scale = side / longest
    size = (max(1, round(cols * scale)), max(1, round(rows * scale)))
    resized = Image.fromarray(_as_rgb(rgb)).resize(size, Image.Resampling.BOX)
    out: RgbArray = np.asarray(resized)
    return out


# ---------------------------------------------------------------- hash sets


def reference_hash_set(rgb: RgbArray) -> tuple[DerivedHash, ...]:
    """The hashes stored for one protected picture (at most 64; docs/robustness.md).

    ``rgb`` is the oriented picture (``(rows, cols, 3)`` uint8). The set is:
    the eight dihedral PDQ hashes of the whole picture (threshold 31), then one
    hash per window of :data:`REFERENCE_CROPS` and one per small rotation
    (:data:`ROTATION_DEGREES`, the rotated picture's central window), each at a
    tighter threshold. Hashes under quality 50 are left out.
    """
    rgb = _as_rgb(rgb)
    out: list[DerivedHash] = []
    if _hashable_window(rgb.shape[1], rgb.shape[0]):
        for name, transformed in zip(DIHEDRAL_ORDER, _dihedral_pictures(rgb), strict=True):
            pdq = pdq_from_rgb(transformed)
            if pdq.quality >= QUALITY_MIN:
                out.append(DerivedHash(f"dihedral/{name}", pdq, DIHEDRAL_THRESHOLD))
    work = work_picture(rgb)
    rows, cols = rgb.shape[:2]
    for name, window in REFERENCE_CROPS:
        derived = _window_hash(work, window, name, CROP_THRESHOLD, (cols, rows))
        if derived is not None:
            out.append(derived)
    for name, window in HALVES:
        derived = _window_hash(work, window, name, HALF_THRESHOLD, (cols, rows))
        if derived is not None:
            out.append(derived)
    for degrees in ROTATION_DEGREES:
        for expand in (False, True):
            rotated = _rotated(work, degrees, expand=expand)
            kind = f"rotate{degrees:+.0f}{'-expanded' if expand else ''}"
            derived = _window_hash(rotated, CENTRE, kind, ROTATION_THRESHOLD, None)
            if derived is not None:
                out.append(derived)
    return tuple(out)


def query_hash_set(rgb: RgbArray, *, whole: PdqHash | None = None) -> tuple[DerivedHash, ...]:
    """The hashes of one scanned picture: as posted, and its normalised windows.

    ``whole`` (the picture as posted, hashed exactly as plain PDQ, kept
    whatever its quality, as plain PDQ matching does), ``trimmed`` (uniform borders and
    letterbox bars removed, :func:`trim_borders`), ``region`` (each photo-like
    rectangle :func:`content_regions` finds in screenshots, memes and padded
    canvases) and ``centre`` (the central window of the best normalised
    picture, which meets the reference's rotated windows). Derived windows
    that repeat an earlier one, are tiny or elongated, or hash under quality
    50 are left out.

    ``whole``, when given, is the plain PDQ the caller already has of the
    same picture (a scan's fast PDQ of the full-resolution file, while
    ``rgb`` may be a reduced decode); it is used as the ``whole`` hash
    instead of hashing ``rgb`` again, so the set finds whatever the scan's
    own hash finds.

    Cost: besides the ``whole`` hash, the picture is reduced once (an integer
    box reduction to at most 384 pixels); borders and regions are found on
    that copy, and every window is hashed from a luma plane with PDQ's blur
    and decimation as one banded map (:func:`~redress.signals.pdq.pdq_of_window`),
    so no window is copied or resized and a mirrored window costs the same
    as any other.
    """
    rgb = _as_rgb(rgb)
    rows, cols = rgb.shape[:2]
    full = Window(0.0, 0.0, 1.0, 1.0)
    # The picture as posted is hashed exactly as plain PDQ hashes it (full
    # resolution, no quality gate of its own), so the set finds everything
    # plain PDQ finds; the references it meets are all quality >= 50.
    if whole is None:
        whole = pdq_from_rgb(rgb)
    out: list[DerivedHash] = [DerivedHash("whole", whole, QUERY_WHOLE_THRESHOLD)]
    # Edges (left, top, right, bottom) of every window hashed so far.
    seen: list[tuple[float, float, float, float]] = [(0.0, 0.0, 1.0, 1.0)]
    image = Image.fromarray(rgb)
    # Luma once, at the decoded size: every plane (the whole picture's and
    # each normalised picture's) is reduced from it, and reducing one channel
    # costs a third of reducing three.
    grey = image.convert("L")
    planes: dict[Window, LumaArray] = {full: _luma_plane(grey, None)}
    # One reduction of the colour picture (at least 384 pixels long) serves
    # the border and region search.
    work = _reduced(image, None)

    def plane_of(within: Window) -> LumaArray:
        # A normalised picture (trimmed, or a photo found in a screenshot) is
        # cut from the full-resolution pixels and reduced on its own, so it
        # is hashed at the reference windows' scale even when it is a third
        # of a tall screenshot (from the whole picture's plane it would be
        # ~130 pixels, 30-40 bits from its reference).
        if within not in planes:
            planes[within] = _luma_plane(grey, within.pixels(cols, rows))
        return planes[within]

    def add(
        kind: str,
        window: Window,
        threshold: int,
        *,
        within: Window = full,
        mirrored: bool = False,
        distinct: float = REGION_MIN_CHANGE,
    ) -> None:
        """Hash ``window`` (fractions of ``within``, itself fractions of the picture)
        unless some edge of every window hashed so far is within ``distinct`` of it."""
        absolute = _inside(within, window)
        left, top = absolute.left, absolute.top
        right, bottom = left + absolute.width, top + absolute.height
        for other in seen:
            if (
                abs(other[0] - left) < distinct
                and abs(other[1] - top) < distinct
                and abs(other[2] - right) < distinct
                and abs(other[3] - bottom) < distinct
            ):
                return
        seen.append((left, top, right, bottom))
        if _same_window(within, full):
            # Close to the whole picture (a thin border at most): the whole
            # picture's plane serves.
            within, window = full, absolute
        size = (within.width * cols, within.height * rows)
        plane = plane_of(within)
        derived = _plane_hash(plane, window, kind, threshold, size, mirrored=False)
        if derived is None:
            return
        out.append(derived)
        if not mirrored:
            return
        # The window mirrored left to right: a flipped copy that was also
        # cropped or screenshotted meets the reference's (unflipped) crops.
        mirror = Window(1.0 - window.left - window.width, window.top, window.width, window.height)
        flipped = _plane_hash(plane, mirror, f"{kind}-mirrored", threshold, size, mirrored=True)
        if flipped is not None:
            out.append(flipped)

    whole_mirrored = _plane_hash(
        planes[full],
        full,
        "whole-mirrored",
        QUERY_NORMALISED_THRESHOLD,
        (cols, rows),
        mirrored=True,
    )
    if whole_mirrored is not None:
        out.append(whole_mirrored)
    # Borders and regions are found on a small copy (1/160 of a side is
    # precise enough for PDQ), region edges again on the reduced picture.
    work_rgb: RgbArray = np.asarray(work)
    small = _small_copy(work)
    trimmed = trim_borders(small)
    # Mirrored twins only for the windows that decide most flipped copies
    # (the best normalised picture and its centre): on the benchmark the
    # other twins never found a copy nothing else found, and each costs a hash.
    found = _region_search(small, work_rgb)
    regions = [w for w, tolerance in found if tolerance != REGION_FAINT_TOLERANCE]
    add("trimmed", full, QUERY_NORMALISED_THRESHOLD, within=trimmed, mirrored=not regions)
    inner = trimmed
    for number, region in enumerate(regions):
        add(
            f"region{number}", full, QUERY_NORMALISED_THRESHOLD, within=region, mirrored=number == 0
        )
        if number == 0:
            inner = region
    # What only the faint search finds is hashed as it is (and mirrored), but
    # its windows are not taken: in a plain photo with a flat dark side it can
    # find a rectangle that is not a photo, and the windows of the picture are
    # what its crops meet.
    faint = [w for w, tolerance in found if tolerance == REGION_FAINT_TOLERANCE]
    for number, region in enumerate(faint):
        add(f"faint{number}", full, QUERY_NORMALISED_THRESHOLD, within=region, mirrored=True)
    add("centre", CENTRE, QUERY_CENTRE_THRESHOLD, within=inner, mirrored=True)
    # The central window of the picture as posted too: a copy rotated with an
    # expanded canvas has no clean border, and its region is a guess.
    add("centre-whole", CENTRE, QUERY_CENTRE_THRESHOLD)
    # Half-step windows: the reference samples each crop family every 3-4 %;
    # the query's own windows, 3.5 % in from each anchor, land between those
    # samples, so a copy cropped between two reference crops still meets one.
    # Of the found photo, and of the trimmed picture as well when a photo was
    # found: a plain photo with a dark or flat side can itself look like a
    # photo on a canvas (the region search cannot tell), and a crop of it
    # must still be hashed as a crop of the whole picture.
    bases = [(inner, "")]
    if inner != trimmed:
        bases.append((trimmed, "-trimmed"))
    # Likewise a photo with a dark or flat edge (the moon, a night sky) loses that
    # edge to the border trim: a crop of it is a crop of the whole picture too.
    if not _same_window(trimmed, full):
        bases.append((full, "-whole"))
    for base, suffix in bases:
        for name, window in REFINE_WINDOWS:
            # Not mirrored: a copy both mirrored and cropped off the grid is rare,
            # and eight more hashes would cost a third of the query's budget.
            add(name + suffix, window, QUERY_CENTRE_THRESHOLD, within=base)
        # Quarter-steps: the same anchors 1.75 % in. With the anchors themselves
        # and the 3.5 % windows they sample the crop families every ~1.75 %,
        # inside PDQ's tolerance; they are closer to other windows than the 2 %
        # that makes a window a repeat, so only exact repeats are skipped.
        # Of the found photo and of the trimmed picture: the region search also
        # finds "photos" inside plain photos, and a corner crop of one between
        # two reference cuts then went unmatched (crops swept over 74-91 % of
        # the area, every 1 %: 0.877 -> 0.901 found). The whole picture, a third
        # base only when its borders were trimmed, keeps the 3.5 % windows alone.
        for name, window in STEP_WINDOWS if suffix != "-whole" else ():
            add(name + suffix, window, QUERY_CENTRE_THRESHOLD, within=base, distinct=STEP_DISTINCT)
        # The picture without a quarter strip along each edge: the reference's
        # own cut-*245 windows, at the same place, so a sticker, an emoji or a
        # caption within an edge's quarter leaves one pair of windows untouched
        # (the halves cover overlays that stay on one side of a split).
        for name, window in STRIP_WINDOWS:
            add(name + suffix, window, QUERY_CENTRE_THRESHOLD, within=base)
    # Halves, for copies with something drawn over one part of the picture
    # (stickers, captions on the picture): of the trimmed picture, and of the
    # photo found inside a screenshot or meme. A sticker on a plain photo can
    # itself look like a found region, so the trimmed picture's halves are
    # always hashed too.
    for name, window in HALVES:
        add(name, window, HALF_THRESHOLD, within=trimmed)
    if inner != trimmed:
        for name, window in HALVES:
            add(f"{name}-region", window, HALF_THRESHOLD, within=inner)
    # The picture with each sticker-like blob covered: a sticker near the centre
    # spoils every half and strip, not the rest of the picture.
    for number, overlay in enumerate(_overlays(small)):
        derived = _plane_hash(
            _covered(planes[full], overlay),
            full,
            f"uncovered{number}",
            QUERY_NORMALISED_THRESHOLD,
            (cols, rows),
            mirrored=False,
        )
        if derived is not None:
            out.append(derived)
    return tuple(out)


def match_sets(reference: Sequence[DerivedHash], query: Sequence[DerivedHash]) -> SetMatch:
    """Decide whether a query set matches a reference set.

    Every pair is compared; a pair matches when its distance is at most the
    smaller of the two hashes' thresholds. The verdict names the matching pair
    with the smallest distance (or, when none matches, the closest pair).
    """
    if not reference or not query:
        return SetMatch(False, None)
    ref_bits = np.frombuffer(b"".join(h.pdq.bits for h in reference), dtype=np.uint8)
    query_bits = np.frombuffer(b"".join(h.pdq.bits for h in query), dtype=np.uint8)
    distances = pair_distances(ref_bits.reshape(-1, 32), query_bits.reshape(-1, 32))
    limits = np.minimum(
        np.array([h.threshold for h in reference])[:, np.newaxis],
        np.array([h.threshold for h in query])[np.newaxis, :],
    )
    margin = distances - limits
    matched = bool((margin <= 0).any())
    # Deciding pair: the smallest distance among matching pairs, else the smallest overall.
    scores = np.where(margin <= 0, distances, distances + 1000)
    flat = int(np.argmin(scores))
    r, q = flat // scores.shape[1], flat % scores.shape[1]
    best = PairMatch(reference[r].kind, query[q].kind, int(distances[r, q]), int(limits[r, q]))
    return SetMatch(matched, best, int(margin.min()))


def pair_distances(
    left: npt.NDArray[np.uint8], right: npt.NDArray[np.uint8]
) -> npt.NDArray[np.int64]:
    """All Hamming distances between ``(n, 32)`` and ``(m, 32)`` uint8 hash arrays: ``(n, m)``."""
    xor = np.bitwise_xor(left[:, np.newaxis, :], right[np.newaxis, :, :])
    distances: npt.NDArray[np.int64] = np.bitwise_count(xor).sum(axis=2, dtype=np.int64)
    return distances


# ---------------------------------------------------------------- normalisation


def trim_borders(rgb: RgbArray) -> Window:
    """The window left after removing uniform borders and letterbox bars from each side.

    A side's border colour is the median of its outermost line; lines are
    removed while at most 3 % of their pixels differ from that colour by more
    than 24 levels (so JPEG noise and a thin watermark do not stop the trim).
    At most 45 % of the picture is removed per side.
    """
    pixels = _as_rgb(rgb)
    rows, cols = pixels.shape[:2]
    top = _border_depth(pixels)
    bottom = _border_depth(pixels[::-1])
    left = _border_depth(pixels.transpose(1, 0, 2))
    right = _border_depth(pixels.transpose(1, 0, 2)[::-1])
    return Window(
        left / cols, top / rows, (cols - left - right) / cols, (rows - top - bottom) / rows
    )


def content_regions(rgb: RgbArray) -> tuple[Window, ...]:
    """Photo-like rectangles inside a screenshot, meme template or padded canvas, best first.

    For each distinct background colour (the colours of the picture's four
    outer lines), pixels that differ from it by more than each of
    :data:`REGION_TOLERANCES` in turn are "content"; the rectangle is grown
    from the densest band of content rows and columns, refined by turns.
    Rectangles covering under 12 % of the picture, or more elongated than 3:1,
    are dropped; so is one equal to the whole picture. The search runs on a
    copy at most 160 pixels long; each rectangle's edges are then found again
    at the resolution given (a photo may be a third of a tall screenshot, so
    one small pixel would be several percent of the photo).
    """
    picture = _as_rgb(rgb)
    return _find_regions(work_picture(picture, REGION_SIDE), picture)


def _find_regions(small_rgb: RgbArray, picture: RgbArray) -> tuple[Window, ...]:
    """:func:`content_regions` searched on ``small_rgb``, edges refined on ``picture``."""
    return tuple(window for window, _ in _region_search(small_rgb, picture))


def _region_search(small_rgb: RgbArray, picture: RgbArray) -> list[tuple[Window, int]]:
    """Each region found, with the tolerance that found it first, tightest first."""
    small = small_rgb
    rows, cols = small.shape[:2]
    if rows < 16 or cols < 16:
        return []
    found: list[tuple[Window, int]] = []
    coarse: list[Window] = []
    for colour in _background_colours(small):
        small_distance = _colour_distance(small, colour)
        previous: npt.NDArray[np.bool_] | None = None
        for tolerance in REGION_TOLERANCES:
            content = small_distance > tolerance
            # A tighter tolerance that marks the same pixels finds the same rectangle.
            if previous is not None and np.array_equal(content, previous):
                continue
            previous = content
            box = _dense_rectangle(content)
            if box is None:
                continue
            top, bottom, left, right = box
            # A photo inside a canvas sits on background: outside the rectangle,
            # most pixels are the background colour (UI text and bars are sparse).
            outside = content.copy()
            outside[top:bottom, left:right] = False
            outside_area = rows * cols - (bottom - top) * (right - left)
            if outside_area <= 0 or outside.sum() > REGION_OUTSIDE_CONTENT * outside_area:
                continue
            window = Window(left / cols, top / rows, (right - left) / cols, (bottom - top) / rows)
            if window.width * window.height < REGION_MIN_AREA:
                continue
            aspect = (window.width * cols) / max(1e-9, window.height * rows)
            if not 1 / MAX_ASPECT <= aspect <= MAX_ASPECT:
                continue
            if _same_window(window, Window(0.0, 0.0, 1.0, 1.0)):
                continue
            if any(_same_window(window, other) for other in coarse):
                continue
            coarse.append(window)
            window = _refine_region(picture, colour, window, small.shape[0], tolerance)
            if any(_same_window(window, other) for other, _ in found):
                continue
            found.append((window, tolerance))
    # Tightest first: a bar the colour of one background is content for another.
    return sorted(found, key=lambda found_by: found_by[0].width * found_by[0].height)


# ---------------------------------------------------------------- internals


def _refine_region(
    picture: RgbArray,
    colour: RgbArray,
    window: Window,
    small_rows: int,
    tolerance: int,
) -> Window:
    """The window's edges found again at ``picture``'s resolution, near the coarse ones.

    Content is what differs from the background ``colour`` by more than
    ``tolerance`` in some channel. Each edge moves within two small pixels of
    the coarse one: to where the band of lines at least half content that
    reaches into the window begins. Only strips along the edges are read.
    """
    rows, cols = picture.shape[:2]
    if rows <= small_rows:
        return window
    pad = 2 * math.ceil(rows / small_rows)  # two small pixels, in picture pixels
    left, top, right, bottom = window.pixels(cols, rows)

    def fills(strip: RgbArray, axis: int) -> npt.NDArray[np.float64]:
        content = _colour_distance(strip, colour) > tolerance
        filled: npt.NDArray[np.float64] = content.mean(axis=axis)
        return filled

    low, high = max(0, top - pad), min(rows, top + pad)
    top = low + _band_start(fills(picture[low:high, left:right], 1), top - low)
    low, high = max(0, bottom - pad), min(rows, bottom + pad)
    bottom = high - _band_start(fills(picture[low:high, left:right], 1)[::-1], high - bottom)
    if bottom - top < 2 * pad:
        return window
    low, high = max(0, left - pad), min(cols, left + pad)
    left = low + _band_start(fills(picture[top:bottom, low:high], 0), left - low)
    low, high = max(0, right - pad), min(cols, right + pad)
    right = high - _band_start(fills(picture[top:bottom, low:high], 0)[::-1], high - right)
    return Window(left / cols, top / rows, (right - left) / cols, (bottom - top) / rows)


def _band_start(fill: npt.NDArray[np.float64], coarse: int) -> int:
    """Where the run of dense lines ending at ``fill``'s last line begins (one-line
    gaps bridged); ``coarse`` when that last line is not dense (the coarse edge
    stays)."""
    dense = fill >= REGION_FILL
    if dense.size == 0 or not dense[-1]:
        return coarse
    bridged = dense.copy()
    bridged[1:-1] |= dense[:-2] & dense[2:]
    gaps = np.flatnonzero(~bridged)
    return int(gaps[-1]) + 1 if gaps.size else 0


def _close_window(a: Window, b: Window, rows_tolerance: float, cols_tolerance: float) -> bool:
    return (
        abs(a.left - b.left) <= cols_tolerance
        and abs(a.left + a.width - b.left - b.width) <= cols_tolerance
        and abs(a.top - b.top) <= rows_tolerance
        and abs(a.top + a.height - b.top - b.height) <= rows_tolerance
    )


def _as_rgb(rgb: RgbArray) -> RgbArray:
    array = np.asarray(rgb)
    if array.dtype != np.uint8:
        raise InvalidInputError("a picture must be a uint8 array", code="invalid_input")
    if array.ndim == 2:
        array = np.repeat(array[:, :, np.newaxis], 3, axis=2)
    if array.ndim != 3 or array.shape[2] not in (3, 4) or array.shape[0] < 1 or array.shape[1] < 1:
        raise InvalidInputError(
            "a picture must be (rows, cols, 3) RGB or (rows, cols) grey", code="invalid_input"
        )
    return np.ascontiguousarray(array[:, :, :3])


def _dihedral_pictures(rgb: RgbArray) -> list[RgbArray]:
    """The picture turned and mirrored, in :data:`DIHEDRAL_ORDER`.

    The pixels are really transformed: PDQ's DCT shortcut for the mirrored
    hashes (``pdqhash.compute_dihedral``) is 30-90 bits away from the hash of
    the mirrored picture on fine textures, because PDQ's sampling grid is not
    symmetric.
    """
    transposed = rgb.transpose(1, 0, 2)
    pictures = [
        rgb,
        np.rot90(rgb, 1),
        np.rot90(rgb, 2),
        np.rot90(rgb, 3),
        rgb[::-1, :],  # Meta's "flip X": mirrored about the horizontal axis
        rgb[:, ::-1],  # Meta's "flip Y": mirrored left to right
        transposed,
        transposed[::-1, ::-1],
    ]
    return [np.ascontiguousarray(p) for p in pictures]


def _hashable_window(width: float, height: float) -> bool:
    if min(width, height) < MIN_WINDOW_SIDE:
        return False
    return max(width, height) / min(width, height) <= MAX_ASPECT


def _window_hash(
    work: RgbArray,
    window: Window,
    kind: str,
    threshold: int,
    source_size: tuple[float, float] | None,
) -> DerivedHash | None:
    rows, cols = work.shape[:2]
    size_w, size_h = source_size if source_size is not None else (cols, rows)
    if not _hashable_window(window.width * size_w, window.height * size_h):
        return None
    left, top, right, bottom = window.pixels(cols, rows)
    if right - left < 16 or bottom - top < 16:
        return None
    crop = np.ascontiguousarray(work[top:bottom, left:right])
    pdq = pdq_from_rgb(crop)
    if pdq.quality < QUALITY_MIN:
        return None
    return DerivedHash(kind, pdq, threshold)


def _plane_hash(
    plane: LumaArray,
    window: Window,
    kind: str,
    threshold: int,
    source_size: tuple[float, float],
    *,
    mirrored: bool,
) -> DerivedHash | None:
    """:func:`_window_hash` of a luma plane's window (mirrored left to right if asked)."""
    rows, cols = plane.shape
    if not _hashable_window(window.width * source_size[0], window.height * source_size[1]):
        return None
    left, top, right, bottom = window.pixels(cols, rows)
    if right - left < 16 or bottom - top < 16:
        return None
    pdq = pdq_of_window(plane, top, left, bottom - top, right - left, mirrored=mirrored)
    if pdq.quality < QUALITY_MIN:
        return None
    return DerivedHash(kind, pdq, threshold)


def _reduced(image: Image.Image, box: tuple[int, int, int, int] | None) -> Image.Image:
    """``image`` (or its ``box``) box-reduced by the largest integer factor that
    keeps its longer side at least :data:`WORK_SIDE` (Pillow's ``reduce``: block
    means, one pass over the pixels read)."""
    width, height = image.size if box is None else (box[2] - box[0], box[3] - box[1])
    factor = max(1, max(width, height) // WORK_SIDE)
    if factor == 1:
        return image if box is None else image.crop(box)
    return image.reduce(factor, box)


def _luma_plane(grey: Image.Image, box: tuple[int, int, int, int] | None) -> LumaArray:
    """The luma picture ``grey`` (or its ``box``) scaled (box filter) so its longer
    side is at most :data:`WORK_SIDE`: the scale the reference's windows are
    hashed at, so both sides' windows are compared at one scale."""
    width, height = grey.size if box is None else (box[2] - box[0], box[3] - box[1])
    reduced = _reduced(grey, box)
    plane: LumaArray = np.asarray(reduced)
    longest = max(width, height)
    if longest > WORK_SIDE:
        scale = WORK_SIDE / longest
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        if reduced.size != size:
            plane = box_resize(plane, size[1], size[0])
    return plane


def _small_copy(work: Image.Image) -> RgbArray:
    """The copy borders and regions are searched on: at most :data:`REGION_SIDE` long."""
    width, height = work.size
    longest = max(width, height)
    if longest <= REGION_SIDE:
        out: RgbArray = np.asarray(work)
        return out
    scale = REGION_SIDE / longest
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    small: RgbArray = np.asarray(work.resize(size, Image.Resampling.BOX))
    return small


def _rotated(work: RgbArray, degrees: float, *, expand: bool) -> RgbArray:
    # Counter-clockwise by ``degrees`` about the centre, bicubic; either the
    # same size or grown to hold the whole rotated picture (``expand``), the
    # two ways apps rotate. The corners the rotation uncovers fall outside the
    # central window.
    image = Image.fromarray(work).rotate(degrees, resample=Image.Resampling.BICUBIC, expand=expand)
    out: RgbArray = np.asarray(image)
    return out


def _inside(outer: Window, inner: Window) -> Window:
    """``inner`` (fractions of ``outer``) as fractions of the whole picture."""
    return Window(
        outer.left + inner.left * outer.width,
        outer.top + inner.top * outer.height,
        inner.width * outer.width,
        inner.height * outer.height,
    )


def _same_window(a: Window, b: Window, tolerance: float = REGION_MIN_CHANGE) -> bool:
    return (
        abs(a.left - b.left) < tolerance
        and abs(a.top - b.top) < tolerance
        and abs(a.left + a.width - b.left - b.width) < tolerance
        and abs(a.top + a.height - b.top - b.height) < tolerance
    )


def _overlays(small: RgbArray) -> tuple[Window, ...]:
    """Bounding windows of sticker-like blobs in the small copy: pixels of one flat,
    saturated colour that fill most of a compact box of 0.4-12 % of the picture."""
    rows, cols = small.shape[:2]
    least, most = OVERLAY_AREA[0] * rows * cols, OVERLAY_AREA[1] * rows * cols
    # One contiguous plane per channel: NumPy's reductions over a last axis of
    # three are several times slower than element-wise maxima of three planes.
    red, green, blue = np.ascontiguousarray(np.moveaxis(small, -1, 0), dtype=np.int16)
    brightest = np.maximum(np.maximum(red, green), blue)
    darkest = np.minimum(np.minimum(red, green), blue)
    candidate = (brightest >= OVERLAY_MIN_VALUE) & (
        (brightest - darkest) * 100 >= round(OVERLAY_SATURATION * 100) * brightest
    )
    if np.count_nonzero(candidate) < least:
        return ()
    step = np.zeros((rows, cols), dtype=np.int16)
    for channel in (red, green, blue):
        np.maximum(step[:, :-1], np.abs(np.diff(channel, axis=1)), out=step[:, :-1])
        np.maximum(step[:-1, :], np.abs(np.diff(channel, axis=0)), out=step[:-1, :])
    candidate &= step <= OVERLAY_FLAT
    ys, xs = np.nonzero(candidate)
    if len(ys) < least:
        return ()
    reds, greens, blues = red[ys, xs], green[ys, xs], blue[ys, xs]
    # Colours in 8 levels a channel; a blob's colour is one bin, or two when its
    # noise straddles a bin edge (the second finds the same box and is skipped).
    bins = (reds // 32) * 64 + (greens // 32) * 8 + blues // 32
    counts = np.bincount(bins, minlength=512)
    found: list[Window] = []
    # The most common colours first; a sticker's is not always among the top few
    # (a warm photograph has many saturated browns), so several are tried, each
    # first by its own bin's pixels (cheap), which a photograph's scattered
    # colours fail.
    for key in np.argsort(counts)[::-1][:OVERLAY_COLOURS]:
        if counts[key] < least:
            break
        chosen = bins == key
        if _blob_box(xs[chosen], ys[chosen], least, most, OVERLAY_FILL / 2) is None:
            continue
        member = np.ones(len(ys), dtype=bool)
        for values in (reds, greens, blues):
            level = float(values[chosen].mean())
            member &= np.abs(values - level) <= OVERLAY_COLOUR_TOLERANCE
        box = _blob_box(xs[member], ys[member], least, most, OVERLAY_FILL)
        if box is None:
            continue
        x0, y0, width, height = box
        window = Window(x0 / cols, y0 / rows, width / cols, height / rows)
        if any(_same_window(window, other, tolerance=0.05) for other in found):
            continue
        found.append(window)
        if len(found) == OVERLAY_MAX:
            break
    return tuple(found)


def _blob_box(
    xs: npt.NDArray[np.intp], ys: npt.NDArray[np.intp], least: float, most: float, fill: float
) -> tuple[int, int, int, int] | None:
    """``(left, top, width, height)`` of the pixels at ``xs, ys`` when they fill at least
    ``fill`` of a compact box of ``least``-``most`` pixels, else ``None``."""
    if len(xs) < least:
        return None
    # The 2nd and 98th percentiles, not the extremes: a few stray pixels of the
    # colour elsewhere must not stretch the box.
    sorted_x, sorted_y = np.sort(xs), np.sort(ys)
    low, high = int(0.02 * (len(xs) - 1)), int(0.98 * (len(xs) - 1))
    x0, x1, y0, y1 = (
        int(sorted_x[low]),
        int(sorted_x[high]),
        int(sorted_y[low]),
        int(sorted_y[high]),
    )
    width, height = x1 - x0 + 1, y1 - y0 + 1
    if not least <= width * height <= most:
        return None
    if max(width / height, height / width) > OVERLAY_MAX_ASPECT:
        return None
    inside = np.count_nonzero((xs >= x0) & (xs <= x1) & (ys >= y0) & (ys <= y1))
    if inside < fill * width * height:
        return None
    return x0, y0, width, height


def _covered(plane: LumaArray, overlay: Window) -> LumaArray:
    """A copy of ``plane`` with ``overlay`` (grown by its margin) filled with the mean
    of a thin ring around it."""
    rows, cols = plane.shape
    grow_w, grow_h = overlay.width * OVERLAY_MARGIN, overlay.height * OVERLAY_MARGIN
    left = max(0, math.floor((overlay.left - grow_w) * cols))
    top = max(0, math.floor((overlay.top - grow_h) * rows))
    right = min(cols, math.ceil((overlay.left + overlay.width + grow_w) * cols))
    bottom = min(rows, math.ceil((overlay.top + overlay.height + grow_h) * rows))
    ring = 3
    around = plane[max(0, top - ring) : bottom + ring, max(0, left - ring) : right + ring]
    inside = plane[top:bottom, left:right]
    count = around.size - inside.size
    fill = (
        (float(around.sum(dtype=np.float64)) - float(inside.sum(dtype=np.float64))) / count
        if count > 0
        else float(plane.mean())
    )
    out = plane.copy()
    out[top:bottom, left:right] = fill
    return out


def _colour_distance(pixels: RgbArray, colour: RgbArray) -> RgbArray:
    """Each pixel's largest channel difference from ``colour`` (pixels' last axis is RGB)."""
    # In uint8 throughout (larger minus smaller), one channel at a time against
    # a scalar: broadcasting a three-value colour over interleaved RGB, or
    # NumPy's max over a last axis of three, is two to three times slower.
    out: RgbArray = np.empty(pixels.shape[:-1], dtype=np.uint8)
    channel_difference: RgbArray = np.empty_like(out)
    for channel in range(3):
        values, level = pixels[..., channel], colour[..., channel]
        np.subtract(np.maximum(values, level), np.minimum(values, level), out=channel_difference)
        if channel == 0:
            out[...] = channel_difference
        else:
            np.maximum(out, channel_difference, out=out)
    return out


def _border_depth(pixels: RgbArray) -> int:
    """How many leading rows of ``pixels`` are a uniform border (of the first row's colour)."""
    rows = pixels.shape[0]
    limit = int(rows * 0.45)
    colour = np.rint(np.median(pixels[0], axis=0)).astype(np.uint8)
    # Most pictures have no border, or a thin one: lines are examined a few
    # at a time, and the search stops at the first line that is not border.
    start, step = 0, 4
    while start < limit:
        end = min(limit, start + step)
        deviation = _colour_distance(pixels[start:end], colour) > BORDER_TOLERANCE
        uniform = deviation.mean(axis=1) <= BORDER_OUTLIERS
        if not uniform.all():
            return start + int(np.argmin(uniform))
        start, step = end, 2 * step
    return limit


def _background_colours(small: RgbArray) -> list[RgbArray]:
    lines = (small[0], small[-1], small[:, 0], small[:, -1])
    colours: list[RgbArray] = []
    for line in lines:
        # Rounded to whole levels, so distances stay in uint8 arithmetic.
        colour = np.rint(np.median(line, axis=0)).astype(np.uint8)
        # A side counts as background only when mostly one colour.
        if (_colour_distance(line, colour) > REGION_TOLERANCE).mean() > 0.5:
            continue
        if any(_colour_distance(colour, c) <= REGION_TOLERANCE for c in colours):
            continue
        colours.append(colour)
    return colours


def _dense_rectangle(content: npt.NDArray[np.bool_]) -> tuple[int, int, int, int] | None:
    """(top, bottom, left, right) of the densest rectangle of content, or None: the
    run of rows at least REGION_FILL content across the current columns, then the
    run of columns across those rows, up to three turns (``_pdq.dense_rectangle``;
    in C because it runs several times for every scanned picture)."""
    rows, cols = content.shape
    return _pdq.dense_rectangle(np.ascontiguousarray(content), rows, cols)
