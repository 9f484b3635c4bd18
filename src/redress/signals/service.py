"""Media bytes in, signals out: the one entry point every other domain calls.

:func:`hash_file` and :func:`hash_bytes` sniff the format from the bytes,
enforce the size limits, and return a :class:`MediaSignals` (PDQ or vPDQ,
MD5, SHA-256 of the exact bytes). Anything that cannot be hashed raises a
:class:`~redress.signals.errors.HashError` with a stable code.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, Any, Literal

from redress.signals import pdq as pdq_image
from redress.signals.errors import (
    CorruptMediaError,
    EmptyFileError,
    MediaTooLargeError,
    TruncatedMediaError,
    UnreadableFileError,
    UnsupportedMediaError,
)
from redress.signals.options import HashOptions
from redress.signals.robust import (
    DerivedHash,
    decode_for_query,
    query_hash_set,
    reference_hash_set,
)
from redress.signals.sniff import SNIFF_BYTES, MediaFormat, declares_more_than, sniff
from redress.signals.types import PdqHash, VpdqFrame
from redress.signals.vpdq import VideoCrop, VideoHashes, hash_video

_CHUNK = 1024 * 1024


@dataclass(frozen=True, slots=True)
class MediaSignals:
    """Every signal of one media file.

    - ``kind``: ``"image"`` or ``"video"`` (an animated GIF is a video whose
      ``pdq`` is also set, to its first frame).
    - ``sha256``, ``md5``: hex digests of the exact bytes; ``size`` in bytes.
    - ``media_type``: the MIME type sniffed from the bytes.
    - ``pdq``: the image's PDQ hash (``None`` for a video, except animated GIF).
    - ``hashable`` / ``unhashable_reason``: ``False`` with a reason when the
      PDQ quality (for a video: every frame's) is under the quality minimum;
      such a file is not an error, but its hash should not be matched on.
    - ``dihedral``: the eight rotation/flip hashes when requested, else empty.
    - ``vpdq``: the video's frame hashes (empty for an image).
    - ``vpdq_trimmed``: with ``HashOptions.letterbox``, the same frames hashed
      without the video's letterbox bars (empty without bars).
    - ``vpdq_crops``: with ``HashOptions(robust="reference")``, the video's
      reference crops (a centred square, the central 87 %, 82 % and 77 %, and with
      ``letterbox`` its frames without bars), each with its frame hashes; empty
      for an image.
    - ``robust``: the image's robust hash set when requested
      (``HashOptions.robust``: a reference or a query set, docs/robustness.md),
      else empty.
    - ``width``, ``height``: as displayed (after EXIF orientation/rotation).
    - ``duration``, ``fps``, ``frame_count``: video facts (``None`` for images).
    """

    kind: Literal["image", "video"]
    sha256: str
    md5: str
    size: int
    media_type: str
    pdq: PdqHash | None
    hashable: bool
    unhashable_reason: str | None = None
    dihedral: tuple[PdqHash, ...] = ()
    vpdq: tuple[VpdqFrame, ...] = ()
    vpdq_trimmed: tuple[VpdqFrame, ...] = ()
    vpdq_crops: tuple[VideoCrop, ...] = ()
    robust: tuple[DerivedHash, ...] = ()
    width: int | None = None
    height: int | None = None
    duration: float | None = None
    fps: float | None = None
    frame_count: int | None = None

    @property
    def quality(self) -> int | None:
        """The image's PDQ quality (``None`` for a video without a still hash)."""
        return self.pdq.quality if self.pdq is not None else None

    def to_json(self, path: str | None = None) -> dict[str, Any]:
        """The ``redress hash --json`` record (see the contract in docs/signals.md)."""
        record: dict[str, Any] = {}
        if path is not None:
            record["path"] = path
        record.update(
            kind=self.kind,
            sha256=self.sha256,
            md5=self.md5,
            size=self.size,
            media_type=self.media_type,
            pdq=self.pdq.hex if self.pdq is not None else None,
            quality=self.quality,
            hashable=self.hashable,
        )
        if not self.hashable:
            record["reason"] = self.unhashable_reason
        record["width"] = self.width
        record["height"] = self.height
        if self.dihedral:
            record["dihedral"] = [h.hex for h in self.dihedral]
        if self.kind == "video":
            record["duration"] = self.duration
            record["fps"] = self.fps
            record["frame_count"] = self.frame_count
            record["vpdq"] = [
                {"frame": f.frame, "quality": f.quality, "pdq": f.pdq.hex, "ts": round(f.ts, 3)}
                for f in self.vpdq
            ]
        return record


def hash_file(path: Path, options: HashOptions) -> MediaSignals:
    """Hash the media file at ``path`` (type sniffed from its bytes, not its name).

    Images are read into memory; videos are streamed from disk for both the
    digests and the decoder, so a large video never sits in memory whole.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
        if not path.is_file():
            raise UnreadableFileError(f"{path} is not a regular file", code="unreadable")
        _check_size(size, options)
        with path.open("rb") as handle:
            head = handle.read(SNIFF_BYTES)
            fmt = sniff(head)
            if fmt.kind == "image":
                data = head + handle.read()
                return hash_bytes(data, options, name=str(path))
            sha256, md5 = hashlib.sha256(head), hashlib.md5(head, usedforsecurity=False)
            while chunk := handle.read(_CHUNK):
                sha256.update(chunk)
                md5.update(chunk)
    except FileNotFoundError as exc:
        raise UnreadableFileError(f"no such file: {path}", code="not_found") from exc
    except IsADirectoryError as exc:
        raise UnreadableFileError(f"{path} is a folder", code="unreadable") from exc
    except PermissionError as exc:
        raise UnreadableFileError(f"permission denied: {path}", code="unreadable") from exc
    except OSError as exc:
        raise UnreadableFileError(f"cannot read {path}: {exc.strerror or exc}") from exc
    try:
        video = hash_video(str(path), options)
    except CorruptMediaError as exc:
        with path.open("rb") as handle:
            _raise_if_truncated(exc, handle, size, fmt)
        raise
    return _video_signals(video, fmt, size, sha256.hexdigest(), md5.hexdigest(), options)


def hash_bytes(data: bytes, options: HashOptions, *, name: str | None = None) -> MediaSignals:
    """Hash media held in memory; the type comes from the bytes, ``name`` only labels errors."""
    label = f"{name}: " if name else ""
    try:
        _check_size(len(data), options)
        fmt = sniff(data[:SNIFF_BYTES])
    except EmptyFileError as exc:
        raise EmptyFileError(f"{label}{exc.message}") from exc
    try:
        if fmt.kind == "image":
            return _hash_image(data, fmt, options)
        video = hash_video(io.BytesIO(data), options)
    except CorruptMediaError as exc:
        _raise_if_truncated(exc, io.BytesIO(data), len(data), fmt)
        raise
    return _video_signals(
        video,
        fmt,
        len(data),
        hashlib.sha256(data).hexdigest(),
        hashlib.md5(data, usedforsecurity=False).hexdigest(),
        options,
    )


# ---------------------------------------------------------------- internals


def _raise_if_truncated(
    exc: CorruptMediaError, stream: IO[bytes], size: int, fmt: MediaFormat
) -> None:
    if declares_more_than(stream, size, fmt):
        raise TruncatedMediaError(
            f"the {fmt.name} file is truncated: its header promises more than its {size} bytes"
        ) from exc


def _check_size(size: int, options: HashOptions) -> None:
    if size == 0:
        raise EmptyFileError("the file is empty (0 bytes)")
    if size > options.max_file_bytes:
        raise MediaTooLargeError(
            f"the file is {size} bytes, over the limit of {options.max_file_bytes}",
            code="too_large",
        )


def _hash_image(data: bytes, fmt: MediaFormat, options: HashOptions) -> MediaSignals:
    sha256 = hashlib.sha256(data).hexdigest()
    md5 = hashlib.md5(data, usedforsecurity=False).hexdigest()
    decoded = pdq_image.open_image(data, fmt, options.max_image_pixels)
    orientation = 1 if options.compat_hma else pdq_image.orientation_of(decoded.image)
    swap = orientation in (5, 6, 7, 8)
    width, height = (decoded.height, decoded.width) if swap else (decoded.width, decoded.height)

    pdq, dihedral, robust = _picture_hashes(decoded, data, fmt, options)

    if decoded.animated and fmt.name == "GIF":
        video = hash_video(io.BytesIO(data), options)
        signals = _video_signals(video, fmt, len(data), sha256, md5, options)
        return _replace_still(signals, pdq, dihedral)

    hashable = pdq.quality >= options.quality_min
    return MediaSignals(
        kind="image",
        sha256=sha256,
        md5=md5,
        size=len(data),
        media_type=fmt.media_type,
        pdq=pdq,
        hashable=hashable,
        unhashable_reason=None if hashable else _low_quality(pdq.quality, options),
        dihedral=dihedral,
        robust=robust,
        width=width,
        height=height,
    )


def image_hashes(data: bytes, options: HashOptions) -> tuple[PdqHash, tuple[DerivedHash, ...]]:
    """The PDQ and robust set a scan computes for a still image, and nothing else.

    Exactly the work :func:`hash_bytes` does for them (decode, the fast PDQ,
    with ``robust="query"`` the query set from a reduced decode), without the
    checksums: what ``redress bench robustness`` times against plain PDQ.
    Refuses what :func:`hash_bytes` refuses, with the same errors, and
    videos (:class:`~redress.signals.errors.UnsupportedMediaError`).
    """
    _check_size(len(data), options)
    fmt = sniff(data[:SNIFF_BYTES])
    if fmt.kind != "image":
        raise UnsupportedMediaError(f"image hashes are for still images; got {fmt.name}")
    try:
        decoded = pdq_image.open_image(data, fmt, options.max_image_pixels)
        pdq, _, robust = _picture_hashes(decoded, data, fmt, options)
    except CorruptMediaError as exc:
        _raise_if_truncated(exc, io.BytesIO(data), len(data), fmt)
        raise
    return pdq, robust


def _picture_hashes(
    decoded: pdq_image.DecodedImage, data: bytes, fmt: MediaFormat, options: HashOptions
) -> tuple[PdqHash, tuple[PdqHash, ...], tuple[DerivedHash, ...]]:
    """The picture's PDQ, dihedral hashes (if asked) and robust set (if asked)."""
    pdq: PdqHash | None = None
    dihedral: tuple[PdqHash, ...] = ()
    robust: tuple[DerivedHash, ...] = ()
    if not options.decode_exact and not options.dihedral and options.robust != "reference":
        pdq = pdq_image.fast_pdq(decoded, fmt)
        if pdq is not None and options.robust == "query":
            # The scan's own hash is the set's ``whole`` hash: the reduced
            # decode serves the windows only.
            robust = query_hash_set(decode_for_query(data, fmt, options), whole=pdq)
    if pdq is None:
        rgb = pdq_image.load_rgb(decoded, fmt, compat_hma=options.compat_hma)
        if options.dihedral:
            dihedral = pdq_image.dihedral_hashes(rgb)
            pdq = dihedral[0]
        else:
            pdq = pdq_image.pdq_from_rgb(rgb)
        # The robust set is hashed from the same decoded picture (EXIF
        # orientation applied unless HMA compatibility asked otherwise).
        if options.robust == "reference":
            robust = reference_hash_set(rgb)
        elif options.robust == "query":
            robust = query_hash_set(rgb)
    return pdq, dihedral, robust


def _video_signals(
    video: VideoHashes, fmt: MediaFormat, size: int, sha256: str, md5: str, options: HashOptions
) -> MediaSignals:
    best = max(f.quality for f in video.frames)
    hashable = best >= options.quality_min
    reason = None
    if not hashable:
        reason = (
            f"no video frame reaches PDQ quality {options.quality_min} (best: {best});"
            " too flat or dark to match reliably"
        )
    return MediaSignals(
        kind="video",
        sha256=sha256,
        md5=md5,
        size=size,
        media_type=fmt.media_type,
        pdq=None,
        hashable=hashable,
        unhashable_reason=reason,
        vpdq=video.frames,
        vpdq_trimmed=video.trimmed,
        vpdq_crops=video.crops,
        width=video.width,
        height=video.height,
        duration=video.duration,
        fps=video.fps,
        frame_count=video.frame_count,
    )


def _replace_still(
    signals: MediaSignals, pdq: PdqHash, dihedral: tuple[PdqHash, ...]
) -> MediaSignals:
    return replace(signals, pdq=pdq, dihedral=dihedral)


def _low_quality(quality: int, options: HashOptions) -> str:
    return (
        f"PDQ quality {quality} is under {options.quality_min}: the picture is too flat,"
        " small or dark for its hash to be matched reliably"
    )
