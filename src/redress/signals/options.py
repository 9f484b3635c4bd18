"""How to hash: the knobs ``redress hash`` and the scan pipeline pass to the signals domain."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any, Literal

from redress.config import Settings
from redress.errors import InvalidInputError


@dataclass(frozen=True, slots=True)
class HashOptions:
    """Options for :func:`redress.signals.hash_file` / :func:`redress.signals.hash_bytes`.

    - ``compat_hma``: hash exactly as Meta's Hasher-Matcher-Actioner does
      (Pillow decode, RGB, full resolution, no EXIF orientation, no video
      rotation), bit for bit.
    - ``exact``: decode every image at full resolution. ``False`` (the
      default, for scanning) lets large JPEGs and other large images be
      decoded at a reduced scale, within a few bits of the exact hash
      (docs/signals.md gives the measured trade-off). ``compat_hma`` implies
      exact.
    - ``seconds_per_hash``: one vPDQ frame hash per this many seconds of
      video, starting at frame 0; ``0`` hashes every frame.
    - ``dihedral``: also compute the eight rotation/flip hashes of an image.
    - ``robust``: also compute an image's robust hash set
      (docs/robustness.md): ``"reference"`` for a picture to protect (up to
      64 hashes: flips, crops, halves, small rotations), ``"query"`` for a
      scanned picture (as posted, borders trimmed, the photo inside a
      screenshot or meme, ...); ``"off"`` (the default) computes neither.
    - ``letterbox``: also hash each video frame without the video's letterbox
      bars, when it has some (``VideoHashes.trimmed``; never in HMA mode).
    - ``max_image_pixels``, ``max_video_seconds``, ``max_file_bytes``: limits
      beyond which a file is refused (decompression bombs, endless videos).
    - ``quality_min``: PDQ quality under which a hash is reported as not
      reliably hashable (``hashable: false``), not as an error.
    """

    compat_hma: bool = False
    exact: bool = False
    seconds_per_hash: float = 1.0
    dihedral: bool = False
    robust: Literal["off", "reference", "query"] = "off"
    letterbox: bool = False
    max_image_pixels: int = 100_000_000
    max_video_seconds: float = 4 * 3600.0
    max_file_bytes: int = 2 * 1024**3
    quality_min: int = 50

    def __post_init__(self) -> None:
        if not self.seconds_per_hash >= 0:  # also rejects NaN
            raise InvalidInputError(
                f"seconds per hash must be 0 or more; got {self.seconds_per_hash}",
                code="bad_seconds_per_hash",
            )
        if self.max_image_pixels < 1 or self.max_file_bytes < 1:
            raise InvalidInputError("size limits must be positive", code="invalid_input")
        if not self.max_video_seconds > 0:
            raise InvalidInputError("the video length limit must be positive", code="invalid_input")
        if self.robust not in ("off", "reference", "query"):
            raise InvalidInputError(
                f"robust hash sets are 'off', 'reference' or 'query'; got {self.robust!r}",
                code="invalid_input",
            )
        if not 0 <= self.quality_min <= 100:
            raise InvalidInputError(
                f"PDQ quality is 0-100; got {self.quality_min}", code="bad_pdq_quality"
            )

    @property
    def decode_exact(self) -> bool:
        """Whether images must be decoded at full resolution (exact or HMA-compatible)."""
        return self.exact or self.compat_hma

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> HashOptions:
        """Options whose limits come from ``settings``; keyword arguments override any field."""
        known = {f.name for f in fields(cls)}
        unknown = set(overrides) - known
        if unknown:
            raise TypeError(f"unknown HashOptions field(s): {', '.join(sorted(unknown))}")
        base = cls(
            max_image_pixels=settings.max_image_pixels,
            max_video_seconds=settings.max_video_seconds,
            max_file_bytes=settings.max_file_bytes,
            quality_min=settings.pdq_quality_min,
        )
        return replace(base, **overrides)
